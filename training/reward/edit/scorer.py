"""Scoring edits for users: `EditScorer.score(sources, edited, instructions)` -> per-edit Gaussian reward, the
predicted edit-region boxes and, for a generative judge, its reasoning.

One source for every edited image, or one per edited image; one instruction for all, or one per edited image.
A scorer trained on shapes-edit instructions refuses an instruction it cannot read (one clear line), rather than
score words it has never seen.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ...common.finite import require_finite_scores
from ...common.images import to_pil_list


@dataclass
class EditScoreResult:
    mean: torch.Tensor  # [N] float32
    std: torch.Tensor  # [N] float32 (0 for a generative judge)
    regions: list[list[list[float]]]  # per edit: boxes [x0, y0, x1, y1] in 0..1
    mode: str  # "reward" or "judge"
    reasoning: list[str] = field(default_factory=list)  # a generative judge's text per edit ([] otherwise)
    details: list[dict] = field(default_factory=list)  # a generative judge's parsed scores per edit

    def rows(self) -> list[dict]:
        rows = [{"mean": float(m), "std": float(s), "regions": r}
                for m, s, r in zip(self.mean, self.std, self.regions, strict=True)]
        for row, text in zip(rows, self.reasoning, strict=False):
            row["reasoning"] = text
        for row, d in zip(rows, self.details, strict=False):
            row["judge"] = d
        return rows


def match_sources(sources: list, n_edited: int) -> list:
    if n_edited == 0:
        raise ValueError("edited images: the batch is empty")
    if len(sources) == 1:
        return sources * n_edited
    if len(sources) != n_edited:
        raise ValueError(f"source images: a batch of {len(sources)} matches neither 1 nor the {n_edited} edited "
                         "images; give one source for all, or one per edited image")
    return sources


def size_mismatch(source, edited, source_name: str = "its source", edited_name: str = "the edited image") -> str | None:
    """Why an edit pair cannot be scored, if its two PIL images differ in size; else None.

    Why refuse rather than resize: the edit scorers compare the two images place by place, and a resized source
    moves every shape in it, so a correct edit scores like a wrong one (a shapes-edit move padded from 64x64 to
    64x80 scored -5.83 instead of -2.27).
    """
    if source.size == edited.size:
        return None
    return (f"{edited_name} is {edited.width}x{edited.height} but {source_name} is {source.width}x{source.height} "
            "(width x height): an edit keeps the source's size, so the two are not an edit pair; give the source "
            "the edited image was made from, or resize one of them to the other's size first")


def check_same_sizes(sources: list, edited: list, source_names: list[str] | None = None,
                     edited_names: list[str] | None = None) -> None:
    """ValueError naming the first edited image whose size differs from its source's (sources already matched
    one per edited image)."""
    for i, (src, img) in enumerate(zip(sources, edited, strict=True)):
        problem = size_mismatch(src, img, f"the source {source_names[i]}" if source_names else "its source",
                                edited_names[i] if edited_names else f"edited image {i}")
        if problem is not None:
            raise ValueError(problem)


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
