"""Best-of-N ranking on absolute scores, and reordering of the batches that travel with the images.

Scores are absolute rewards, each image judged on its own: ranking never normalises across the batch (no
softmax), so the top image's score means the same thing whatever else was in the batch. The risk-averse
utility mean - lambda * std prefers an image the scorer is sure about over one with the same mean and a wide
uncertainty.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

RANK_BY = ("mean", "mean - lambda*std")


@dataclass(frozen=True)
class Ranking:
    """The chosen images, best first: `indices` into the original batch, and their scores in that order."""

    indices: torch.Tensor  # int64 [k]
    utility: torch.Tensor  # float32 [k], the value that was sorted on
    mean: torch.Tensor  # float32 [k]
    std: torch.Tensor  # float32 [k]


def utility(mean: torch.Tensor, std: torch.Tensor, rank_by: str = "mean", risk_lambda: float = 0.0) -> torch.Tensor:
    """The value images are sorted on: the mean, or mean - lambda * std."""
    mean, std = _check_scores(mean, std)
    if rank_by == "mean":
        return mean.clone()
    if rank_by == "mean - lambda*std":
        if not (risk_lambda >= 0.0):  # also rejects NaN
            raise ValueError(f"risk_lambda: expected a number >= 0, got {risk_lambda}")
        return mean - float(risk_lambda) * std
    raise ValueError(f"rank_by: expected one of {', '.join(RANK_BY)}, got {rank_by!r}")


def rank(mean: torch.Tensor, std: torch.Tensor, top_k: int, rank_by: str = "mean",
         risk_lambda: float = 0.0) -> Ranking:
    """The top_k images by utility, in descending order; ties keep their batch order.

    top_k larger than the batch returns the whole batch, sorted.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k: expected a whole number >= 1, got {top_k!r}")
    u = utility(mean, std, rank_by, risk_lambda)
    order = torch.sort(u, descending=True, stable=True).indices[: min(top_k, u.numel())]
    return Ranking(indices=order, utility=u[order], mean=mean.float()[order], std=std.float()[order])


def _check_scores(mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.as_tensor(mean, dtype=torch.float32).flatten()
    std = torch.as_tensor(std, dtype=torch.float32).flatten()
    if mean.numel() == 0:
        raise ValueError("scores: empty (no image was scored)")
    if mean.shape != std.shape:
        raise ValueError(f"scores: {mean.numel()} means but {std.numel()} standard deviations")
    bad = (~torch.isfinite(mean) | ~torch.isfinite(std)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"scores: not finite for image(s) {bad}; the scorer produced NaN or inf")
    return mean, std


def take_images(images: torch.Tensor, indices: torch.Tensor, name: str = "images") -> torch.Tensor:
    """Rows `indices` of a batch tensor (IMAGE [B,H,W,C] or any [B,...])."""
    if not isinstance(images, torch.Tensor) or images.ndim < 1:
        raise ValueError(f"{name}: expected a batch tensor, got {type(images).__name__}")
    return images.index_select(0, indices.to(images.device))


def check_mask(mask, n_images: int) -> torch.Tensor:
    """The MASK as [B,H,W] with B == n_images or 1, or an error saying what is wrong."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask: expected a MASK tensor, got {type(mask).__name__}")
    if mask.ndim == 2:  # a single H x W mask
        mask = mask.unsqueeze(0)
    if mask.ndim != 3:
        raise ValueError(f"mask: expected shape [B,H,W], got {tuple(mask.shape)}")
    if mask.shape[0] not in (1, n_images):
        raise ValueError(f"mask: batch of {mask.shape[0]} masks for {n_images} images; give one mask per image "
                         f"(in the same order) or a single mask")
    return mask


def take_mask(mask: torch.Tensor, indices: torch.Tensor, n_images: int) -> torch.Tensor:
    """MASK rows in the ranked order. One mask for the whole batch is repeated, as ComfyUI broadcasts it."""
    mask = check_mask(mask, n_images)
    if mask.shape[0] == 1:
        return mask.expand(indices.numel(), -1, -1).clone()
    return take_images(mask, indices, "mask")


def check_latent(latent, n_images: int) -> None:
    """Raise unless `latent` is a LATENT dict with one sample per image."""
    if not isinstance(latent, dict) or "samples" not in latent:
        raise ValueError("latent: expected a LATENT (a dict with 'samples')")
    samples = latent["samples"]
    if not isinstance(samples, torch.Tensor) or samples.ndim < 2:
        raise ValueError(f"latent: 'samples' must be a batch tensor, got {type(samples).__name__}")
    if samples.shape[0] != n_images:
        raise ValueError(f"latent: batch of {samples.shape[0]} latents for {n_images} images; the latents must be "
                         f"the ones the images were decoded from, one per image, in the same order")


def take_latent(latent: dict, indices: torch.Tensor, n_images: int) -> dict:
    """A LATENT dict whose per-sample entries follow the ranked order.

    "samples" must have one row per image. "noise_mask" is reordered when it has one row per image and kept when
    it is shared; "batch_index" (ComfyUI's per-sample noise seeds) follows the order. Other keys are copied.
    """
    check_latent(latent, n_images)
    out = dict(latent)
    out["samples"] = take_images(latent["samples"], indices, "latent")
    mask = latent.get("noise_mask")
    if isinstance(mask, torch.Tensor) and mask.ndim >= 1 and mask.shape[0] == n_images and n_images > 1:
        out["noise_mask"] = take_images(mask, indices, "latent noise_mask")
    batch_index = latent.get("batch_index")
    if isinstance(batch_index, (list, tuple)) and len(batch_index) == n_images:
        out["batch_index"] = [batch_index[i] for i in indices.tolist()]
    return out
