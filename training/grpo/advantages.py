"""Group-relative advantages with the paper's top-k / bottom-k filter, and the per-step group statistics.

Each prompt is sampled G times; a sample's advantage is its reward relative to its own group, so prompts that are
easy or hard for the model weigh the same. The paper keeps only the top-k and bottom-k samples of each group:
the clearest successes and failures, which also halves the training compute at G=24, k=6.
"""

from __future__ import annotations

import torch

STD_MODES = ("group", "global")


def group_advantages(
    rewards: torch.Tensor, top_k: int | None = None, std: str = "group", eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """rewards [P, G] -> (advantages [P, G] float32, keep [P, G] bool).

    advantages = (r - group mean) / (std + eps), std the population std (ddof 0) over the group (std="group") or
    over all P*G rewards (std="global"). With top_k, keep marks the top_k highest and top_k lowest rewards of each
    group (ties broken by lower index first; the bottom_k are taken among the samples not in the top_k, so exactly
    2 * top_k are kept) and every other sample gets advantage 0; without top_k, or when
    2 * top_k >= G, every sample is kept.
    """
    if rewards.ndim != 2:
        raise ValueError(f"rewards must have shape [P, G] (prompts x group), got shape {tuple(rewards.shape)}")
    if std not in STD_MODES:
        raise ValueError(f"std must be one of {STD_MODES}, got {std!r}")
    rewards = rewards.float()
    _, group_size = rewards.shape
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    scale = rewards.std(dim=1, correction=0, keepdim=True) if std == "group" else rewards.std(correction=0)
    advantages = centred / (scale + eps)

    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be None (keep all) or >= 1, got {top_k}")
    if top_k is None or 2 * top_k >= group_size:
        return advantages, torch.ones_like(rewards, dtype=torch.bool)
    # Stable sorts break ties by lower index. The top_k are chosen first; the bottom_k are then chosen among the
    # others, so a group keeps exactly 2 * top_k samples even when rewards tie (e.g. a zero-std group).
    highest = torch.sort(rewards, dim=1, descending=True, stable=True).indices[:, :top_k]
    keep = torch.zeros_like(rewards, dtype=torch.bool)
    keep.scatter_(1, highest, True)
    not_top = torch.where(keep, torch.full_like(rewards, float("inf")), rewards)
    lowest = torch.sort(not_top, dim=1, stable=True).indices[:, :top_k]
    keep.scatter_(1, lowest, True)
    return torch.where(keep, advantages, torch.zeros_like(advantages)), keep


def group_stats(rewards: torch.Tensor, keep: torch.Tensor) -> dict[str, float]:
    """What metrics.jsonl records about one step's rewards [P, G]."""
    rewards = rewards.float()
    group_std = rewards.std(dim=1, correction=0)
    kept = rewards[keep]
    return {
        "reward_mean": rewards.mean().item(),
        "reward_std": rewards.std(correction=0).item(),
        "reward_min": rewards.min().item(),
        "reward_max": rewards.max().item(),
        "group_std_mean": group_std.mean().item(),
        "zero_std_group_frac": (group_std == 0).float().mean().item(),
        "kept_reward_mean": kept.mean().item() if kept.numel() else float("nan"),
        "kept_frac": keep.float().mean().item(),
    }
