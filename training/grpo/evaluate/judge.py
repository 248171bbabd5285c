"""The judges of an evaluation: the scorer (every image on its own) and the order-swapped pairwise judge (two images
of the same prompt and noise in one chat, asked in both orders, as the paper does against order bias).

Before any sampling, `vocabulary_problem` asks the scorer whether it can read the prompts at all: the built-in
shapes scorers know 16 words, and a number they give for "a photo of a dog right of a teddy bear" means nothing.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from training.common.images import to_pil_list


class EvaluationInputError(ValueError):
    """An evaluation that cannot give a meaningful answer; the message is one line that says why."""


def vocabulary_problem(scorer, prompts: list[str], name: str = "the scorer") -> str:
    """'' when the scorer can read every prompt, else one line saying which prompts it cannot and what to use.

    The scorer's own world check (training/reward/world_check.py) runs on a plain light picture, which passes its
    image half, so only the prompt's words are judged."""
    check = getattr(getattr(scorer, "model", None), "world_warnings", None)
    if check is None:
        return ""  # a Qwen2.5-VL scorer reads any text
    blank = Image.new("RGB", (64, 64), (245, 245, 245))
    distinct = list(dict.fromkeys(prompts))
    warnings = check([blank] * len(distinct), distinct)
    unread = [(p, w) for p, w in zip(distinct, warnings, strict=True) if w]
    if not unread:
        return ""
    prompt, warning = unread[0]
    return (f"{name} cannot judge this prompt set: {len(unread)} of {len(distinct)} prompts have words it does not "
            f"know (first: {prompt[:80]!r}: {warning}); evaluate these prompts with a Qwen2.5-VL scorer (a trained "
            "SpatialScore or a plain Qwen2.5-VL folder)")  # fmt: skip


def score_images(score, images: torch.Tensor, prompts: list[str]) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """(mean, std or None, warnings) per image from `score(images, prompts)` (a Scorer's score, or the node's)."""
    result = score(images, prompts)
    mean = torch.as_tensor(result.mean, dtype=torch.float32).cpu().numpy()
    std = torch.as_tensor(result.std, dtype=torch.float32).cpu().numpy()
    warnings = [str(w) for w in (getattr(result, "warnings", None) or [""] * len(prompts))]
    has_std = getattr(result, "mode", "reward") == "reward" and bool(np.any(std > 0))
    return mean, (std if has_std else None), warnings


def pairwise_judge(model, batch_size: int = 4):
    """The order-swapped pairwise judge on a zero-shot Qwen2.5-VL; (None, why) when `model` cannot be one."""
    from training.reward.judges import PairwiseJudge

    mode = getattr(model, "mode", None)
    if mode != "zero-shot":
        what = "a trained reward model" if mode == "reward" else "not a Qwen2.5-VL"
        return None, (f"the pairwise judge needs a plain Qwen2.5-VL (zero-shot mode); the scorer is {what} (give "
                      "--judge with a Qwen2.5-VL folder)")  # fmt: skip
    return PairwiseJudge(model, batch_size=batch_size), ""


def judge_preference(judge, a: torch.Tensor, b: torch.Tensor, prompts: list[str]) -> np.ndarray:
    """Per image pair, the judge's preference for b over a averaged over both orders, in 0..1 (0.5: none).

    With p1 = P(Yes | b shown first) and p2 = P(Yes | a shown first), both normalised over {Yes, No}, the
    preference is (p1 + 1 - p2) / 2: a judge that always answers Yes prefers neither (training/reward/judges.py)."""
    from training.reward.judges import pairwise_margin

    first, second = to_pil_list(b), to_pil_list(a)
    p1 = torch.sigmoid(judge.prefer_first(first, second, prompts).double()).numpy()
    p2 = torch.sigmoid(judge.prefer_first(second, first, prompts).double()).numpy()
    return pairwise_margin(p1, p2) + 0.5
