"""Scoring edits for users: `EditScorer.score(sources, edited, instructions)` -> per-edit Gaussian reward, the
predicted edit-region boxes and, for a generative judge, its reasoning.

One source for every edited image, or one per edited image; one instruction for all, or one per edited image.
A scorer trained on shapes-edit instructions refuses an instruction it cannot read (one clear line), rather than
score words it has never seen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch

from ...common.finite import require_finite_scores
from ...common.images import to_pil_list
from .result import EditScoreResult
from .two_images import check_same_sizes, match_sources, size_mismatch


def normalise_instructions(instructions: str | Sequence[str], n: int, form: str | None = None) -> list[str]:
    items = [instructions] * n if isinstance(instructions, str) else list(instructions)
    if len(items) == 1 and n > 1:
        items = items * n
    if len(items) != n:
        raise ValueError(f"instructions: got {len(items)} for {n} edited images; give one for all or one per image")
    for i, text in enumerate(items):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"instruction{'' if n == 1 else f' {i}'}: empty instruction")
        if form == "shapes-edit":
            from ...dataset.edit.instructions import parse_instruction

            parse_instruction(text)  # InstructionParseError (a ValueError) says what the form is
    return items


class EditScorer:
    def __init__(self, model, batch_size: int = 16):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size

    @property
    def mode(self) -> str:
        return "judge" if self.model.kind == "judge" else "reward"

    def score(self, sources, edited, instructions, progress: Callable[[int, int], None] | None = None
              ) -> EditScoreResult:
        edited_pil = to_pil_list(edited)
        sources_pil = match_sources(to_pil_list(sources), len(edited_pil))
        check_same_sizes(sources_pil, edited_pil)
        form = getattr(self.model.config, "instructions", None)
        texts = normalise_instructions(instructions, len(edited_pil), form)
        if self.model.kind == "judge":
            return self.model.judge_edits(sources_pil, edited_pil, texts, progress=progress)
        means, stds, regions = [], [], []
        n = len(edited_pil)
        for start in range(0, n, self.batch_size):
            sl = slice(start, start + self.batch_size)
            with torch.inference_mode():
                out = self.model(self.model.encode(sources_pil[sl], edited_pil[sl], texts[sl]))
            means.append(out.mean.float().cpu())
            stds.append(out.log_std.float().exp().cpu())
            regions += self.model.predict_regions(out)
            if progress is not None:
                progress(min(start + self.batch_size, n), n)
        mean, std = torch.cat(means), torch.cat(stds)
        require_finite_scores(mean, std, "the edit scorer")  # an fp16/bf16 overflow or a broken head
        return EditScoreResult(mean, std, regions, "reward")

    def to(self, device) -> EditScorer:
        target = self.model if isinstance(self.model, torch.nn.Module) else getattr(self.model, "model", None)
        if target is not None:
            target.to(torch.device(device))
        return self

    def release(self) -> None:
        self.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def load_edit_scorer(name_or_path: str | os.PathLike, device=None, dtype=None, batch_size: int = 16) -> EditScorer:
    """An EditScorer from an edit scorer folder or a shipped name ("shapes-edit")."""
    from .folder import load_edit_model

    return EditScorer(load_edit_model(name_or_path, device=device, dtype=dtype), batch_size=batch_size)


__all__ = ["EditScoreResult", "EditScorer", "check_same_sizes", "load_edit_scorer", "match_sources",
           "normalise_instructions", "size_mismatch"]
