"""The pixel oracle as the judge of generated shapes-world images: how often the objects and relations a prompt
names are really drawn (`oracle_verdicts`, `oracle_figures`), and the same oracle as a reward for ablations
(`OracleReward`, reward.path "oracle:NAME").

This is the judge of a GRPO run in the shapes world, never its reward (the reward is the scorer's). Per prompt the
shapes oracle finds each named colour's object and judges each stated relation from the pixels
(training/dataset/oracle.py). Reported, overall and split by the number of objects:
  objects_ok     (a) every named object is drawn, in its colour
  relation_ok    (b) the fraction of stated relations that hold
  all_ok         (c) every stated relation of the prompt holds
  clean          the picture shows the named objects and nothing else: each named colour is one object (at least
                 CLEAN_PURITY of its pixels in its largest blob) and no other colour has an object. (a)-(c) look
                 only at each named colour's largest blob, so a generator that draws extra or repeated objects can
                 raise them; GRPO against a scorer that does not punish clutter does exactly that
  clean_all_ok   (c) in a clean picture: every stated relation holds and the picture is clean
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

ORACLES = ("shapes",)  # judges of held-out figures (output.oracle)
ORACLE_REWARDS = ("shapes", "shapes-clean")  # reward.path "oracle:NAME" (ablations' upper bounds)
CLEAN_PURITY = 0.9


def oracle_verdicts(images, prompts: Sequence[str]) -> list[dict]:
    """Per image: {"objects": n, "objects_ok": bool, "found": k, "relations": [bool, ...], "clean": bool,
    "boxes": {colour: (x0, y0, x1, y1)}} (the shapes oracle; k of the n named objects are drawn in their colour;
    boxes are the drawn named objects' boxes as fractions of the picture)."""
    from training.common.images import to_pil_list
    from training.dataset.oracle import analyse_objects, analysis_size, judge_objects, parse_prompt

    pictures = to_pil_list(images)
    if len(pictures) != len(prompts):
        raise ValueError(f"{len(pictures)} images for {len(prompts)} prompts")
    verdicts = []
    for picture, prompt in zip(pictures, prompts, strict=True):
        relations = parse_prompt(prompt)
        colors = sorted({c for r in relations for c in (r.subject[0], r.object[0])})
        analysis = analyse_objects(picture)  # every colour at once: the named ones and any that should be absent
        found = {c: analysis[c][0] for c in colors}
        drawn = sum(found[c] is not None for c in colors)
        clean = (all(analysis[c][1] >= CLEAN_PURITY for c in colors)
                 and all(blob is None for c, (blob, _) in analysis.items() if c not in colors))
        w, h = analysis_size(*picture.size)  # the blobs' frame
        boxes = {c: (b.x0 / w, b.y0 / h, b.x1 / w, b.y1 / h) for c, b in found.items() if b is not None}
        verdicts.append({"objects": len(colors), "objects_ok": drawn == len(colors), "found": drawn,
                         "relations": judge_objects(found, relations).holds, "clean": clean,
                         "boxes": boxes})  # fmt: skip
    return verdicts


def oracle_figures(verdicts: list[dict], prefix: str = "oracle_") -> dict[str, float]:
    """The (a)-(c) rates, overall and for 2- and 3-object prompts (keys like oracle_all_ok, oracle_all_ok_3obj)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for v in verdicts:
        groups[""].append(v)
        groups[f"_{v['objects']}obj"].append(v)
    figures = {}
    for suffix, group in sorted(groups.items()):
        relations = [h for v in group for h in v["relations"]]
        figures[f"{prefix}objects_ok{suffix}"] = sum(v["objects_ok"] for v in group) / len(group)
        figures[f"{prefix}relation_ok{suffix}"] = sum(relations) / max(1, len(relations))
        figures[f"{prefix}all_ok{suffix}"] = sum(all(v["relations"]) for v in group) / len(group)
        if all("clean" in v for v in group):
            figures[f"{prefix}clean{suffix}"] = sum(v["clean"] for v in group) / len(group)
            figures[f"{prefix}clean_all_ok{suffix}"] = sum(v["clean"] and all(v["relations"]) for v in group) / len(group)
        figures[f"{prefix}prompts{suffix}"] = len(group)
    return figures


class OracleReward:
    """The shapes oracle as a reward (an upper bound for ablations): half the fraction of named objects drawn in
    their colour, plus the fraction of stated relations that hold, plus 1 when all hold (at most 2.5).

    The objects term rewards what the scorer also rewards (a picture missing an object is worse), so that this is
    an upper bound of the scorer's signal and not a sparser one: with relations alone, most groups of a weak
    generator are flat (no sample places anything right) and carry no advantage at all.
    With `clean` ("oracle:shapes-clean") the relation terms count only in a clean picture (the named objects, each
    once, nothing else): the upper bound of a scorer that puts a clean picture first, which the plain oracle
    reward, like (a)-(c), does not. A bonus of 1 for a clean picture instead was not enough: at beta 0 GRPO gave up
    clean pictures for relations among extra blobs (clean 22.5% -> 7.0% in 70 steps, research/shapes_grpo/journal.md).
    Scorer-shaped (`score(images, prompts)` -> .mean, .std) so the trainer needs no branch."""

    def __init__(self, clean: bool = False):
        self.clean = clean

    def score(self, images, prompts):
        import torch

        from training.reward.scorer import ScoreResult

        prompts = [prompts] * len(images) if isinstance(prompts, str) else list(prompts)
        rewards = []
        for v in oracle_verdicts(images, prompts):
            holds = v["relations"]
            placed = sum(holds) / len(holds) + float(all(holds))
            if self.clean and not v["clean"]:
                placed = 0.0
            rewards.append(0.5 * v["found"] / v["objects"] + placed)
        mean = torch.tensor(rewards, dtype=torch.float32)
        return ScoreResult(mean=mean, std=torch.zeros_like(mean), mode="oracle")


def oracle_reward(name: str) -> OracleReward:
    """The reward behind reward.path "oracle:NAME" (NAME in ORACLE_REWARDS; validation checked it)."""
    return OracleReward(clean=name == "shapes-clean")
