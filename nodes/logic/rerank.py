"""Best-of-N: the top_k of a scored batch, with the latents and masks that belong to those images."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .annotate import score_lines
from .ranking import Ranking, check_latent, check_mask, rank, take_images, take_latent, take_mask
from .scoring import ScoreTable


@dataclass(frozen=True)
class Reranked:
    images: torch.Tensor  # IMAGE [k,H,W,C], best first
    latent: dict | None  # LATENT with k samples in the same order, when one was given
    mask: torch.Tensor | None  # MASK [k,H,W] in the same order, when one was given
    ranking: Ranking  # indices into the input batch, and the scores, best first
    prompts: list[str]  # the prompt each kept image was scored against
    report: list[str]  # the whole batch ranked, one line per image, for the UI text


def check_carried(n_images: int, latent: dict | None = None, mask: torch.Tensor | None = None) -> None:
    """Fail before scoring when the latents or masks cannot belong to the images."""
    if latent is not None:
        check_latent(latent, n_images)
    if mask is not None:
        check_mask(mask, n_images)


def rerank(table: ScoreTable, images: torch.Tensor, top_k: int, rank_by: str = "mean", risk_lambda: float = 0.0,
           latent: dict | None = None, mask: torch.Tensor | None = None) -> Reranked:
    n = int(images.shape[0])
    if table.mean.numel() != n:
        raise ValueError(f"{table.mean.numel()} scores for {n} images")
    check_carried(n, latent, mask)
    ranking = rank(table.mean, table.std, top_k, rank_by, risk_lambda)
    idx = ranking.indices
    everyone = rank(table.mean, table.std, n, rank_by, risk_lambda)
    order = everyone.indices.tolist()
    header = f"top {idx.numel()} of {n} by {rank_by}" + (f" (lambda {risk_lambda:g})" if rank_by != "mean" else "")
    report = [header] + score_lines(everyone.mean, everyone.std, indices=order,
                                    prompts=[table.prompts[i] for i in order])
    return Reranked(
        images=take_images(images, idx),
        latent=take_latent(latent, idx, n) if latent is not None else None,
        mask=take_mask(mask, idx, n) if mask is not None else None,
        ranking=ranking,
        prompts=[table.prompts[i] for i in idx.tolist()],
        report=report,
    )
