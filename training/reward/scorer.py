"""Batched, gradient-free scoring of (image, prompt) pairs with a SpatialScore model.

Images are sorted by size so each batch pads little, scored `batch_size` at a time under inference mode, and
returned in the caller's order. A row's score does not depend on its batch-mates: padding is on the right and
the causal decoder never lets a real token attend to a pad.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..common.finite import require_finite_scores
from ..common.images import ImageInputError, to_pil_list
from .models.loading import load_model
from .models.model import SpatialScoreModel


@dataclass
class ScoreResult:
    mean: torch.Tensor  # [N] float32, CPU
    std: torch.Tensor  # [N] float32, CPU (0 in zero-shot mode)
    mode: str  # "reward" or "zero-shot"
    # per image: '' or why the score means little (outside the scorer's world: unknown words, a photo for the
    # shapes scorer); only scorers that know their world fill it
    warnings: list[str] = field(default_factory=list)

    def rows(self) -> list[dict]:
        rows = [{"mean": float(m), "std": float(s)} for m, s in zip(self.mean, self.std, strict=True)]
        for row, warning in zip(rows, self.warnings, strict=False):
            row["out_of_world"] = bool(warning)
            if warning:
                row["warning"] = warning
        return rows


def normalise_prompts(prompts: str | Sequence[str], n_images: int) -> list[str]:
    """One prompt for every image, or exactly one per image; empty prompts are refused."""
    if isinstance(prompts, str):
        prompts = [prompts] * n_images
    else:
        prompts = list(prompts)
        if len(prompts) == 1 and n_images > 1:
            prompts = prompts * n_images
        if len(prompts) != n_images:
            raise ValueError(
                f"prompts: got {len(prompts)} prompts for {n_images} images; give one prompt for all images "
                f"or exactly one per image"
            )
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ValueError(f"prompts[{i}]: expected text, got {type(p).__name__}")
        if not p.strip():
            raise ValueError(f"prompts[{i}]: empty prompt")
    return prompts


class Scorer:
    """SpatialScore for users: `score(images, prompts)` -> per-image Gaussian reward (mean, std)."""

    def __init__(self, model: SpatialScoreModel, batch_size: int = 8, device: str | torch.device | None = None,
                 shared_prefix: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.batch_size = batch_size
        self.shared_prefix = shared_prefix
        self.device = torch.device(device) if device is not None else next(model.parameters()).device

    @property
    def mode(self) -> str:
        return self.model.mode

    def to(self, device: str | torch.device) -> Scorer:
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def release(self) -> None:
        """Move the weights to the CPU and free accelerator memory (keep-loaded off)."""
        self.model.to("cpu")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    @torch.inference_mode()
    def score(self, images, prompts: str | Sequence[str],
              progress: Callable[[int, int], None] | None = None) -> ScoreResult:
        pil = to_pil_list(images)
        prompts = normalise_prompts(prompts, len(pil))
        if next(self.model.parameters()).device != self.device:
            self.model.to(self.device)
        # Same prompts together (their text prefix is computed once), then similar sizes (little padding).
        order = sorted(range(len(pil)), key=lambda i: (prompts[i], pil[i].width * pil[i].height))
        # zeros, not empty: on fake tensors (benchmarks/dryrun) no values are written here, and the finiteness
        # check below must not read uninitialised memory
        mean = torch.zeros(len(pil), dtype=torch.float32)
        log_std = torch.zeros(len(pil), dtype=torch.float32)
        n_batches = math.ceil(len(order) / self.batch_size)
        for b in range(n_batches):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            images_b, prompts_b = [pil[i] for i in idx], [prompts[i] for i in idx]
            if self.shared_prefix:
                m, s = self.model.score_shared_prefix(images_b, prompts_b)
            else:
                m, s = self.model(self.model.encode(images_b, prompts_b))
            mean[idx] = m.float().cpu()
            log_std[idx] = s.float().cpu()
            if progress is not None:
                progress(min((b + 1) * self.batch_size, len(order)), len(order))
        std = log_std.exp()
        require_finite_scores(mean, std)  # an fp16/bf16 overflow or a broken head: one clear error, no NaN reports
        check = getattr(self.model, "world_warnings", None)
        warnings = check(pil, prompts) if check is not None else []
        return ScoreResult(mean=mean, std=std, mode=self.mode, warnings=warnings)


def load_scorer(name_or_path: str | os.PathLike, device: str | torch.device | None = None,
                dtype: torch.dtype | None = None, batch_size: int = 8, attn: str = "sdpa",
                base_model: str | os.PathLike | None = None, shared_prefix: bool = True) -> Scorer:
    """A ready Scorer from a scorer folder, a Qwen2.5-VL folder (zero-shot) or a shipped name ("shapes")."""
    model = load_model(name_or_path, device=device, dtype=dtype, attn=attn, base_model=base_model)
    return Scorer(model, batch_size=batch_size, shared_prefix=shared_prefix)


__all__ = ["ImageInputError", "ScoreResult", "Scorer", "load_scorer", "normalise_prompts"]
