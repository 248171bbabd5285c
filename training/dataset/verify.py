"""Automatic verification of pairs: the shapes oracle, and optionally a scorer that must prefer the perfect image.

Oracle rule (shapes world): the perfect image satisfies every relation of the prompt; the perturbed image
satisfies every relation of the perturbed prompt, and, judged against the original prompt, fails exactly the
changed relations and keeps all the others.
"""

from __future__ import annotations

from .oracle import find_objects, judge_objects
from .plan import PairPlan, ScenePlan


def oracle_check_chosen(objects, plan: ScenePlan) -> bool:
    return judge_objects(objects, plan.plain).all


def oracle_check_rejected(objects, plan: ScenePlan, pair: PairPlan) -> bool:
    changed = {c.index for c in pair.perturbation.changes}
    against_prompt = judge_objects(objects, plan.plain).holds
    if any((i in changed) == holds for i, holds in enumerate(against_prompt)):
        return False
    return judge_objects(objects, pair.plain_perturbed).all


def oracle_verify(chosen_image, rejected_image, plan: ScenePlan, pair: PairPlan) -> dict:
    """{"chosen": bool, "rejected": bool}: True when the image is what the pair says it is."""
    return {"chosen": oracle_check_chosen(find_objects(chosen_image), plan),
            "rejected": oracle_check_rejected(find_objects(rejected_image), plan, pair)}


def scorer_margins(scorer, chosen_images: list, rejected_images: list, prompts: list[str]) -> list[dict]:
    """Per pair, the scorer's mean reward for each image against the original prompt, and their difference.
    Each distinct (image, prompt) is scored once: the pairs of a scene share their perfect image."""
    if not prompts:
        return []
    keys = [(str(img), p) for img, p in zip(chosen_images, prompts, strict=True)]
    keys += [(str(img), p) for img, p in zip(rejected_images, prompts, strict=True)]
    unique = list(dict.fromkeys(keys))
    means = scorer.score([img for img, _ in unique], [p for _, p in unique]).mean.tolist()
    mean_of = dict(zip(unique, means, strict=True))
    n = len(prompts)
    out = []
    for i in range(n):
        c, r = mean_of[keys[i]], mean_of[keys[n + i]]
        out.append({"chosen": round(c, 6), "rejected": round(r, 6), "margin": round(c - r, 6)})
    return out
