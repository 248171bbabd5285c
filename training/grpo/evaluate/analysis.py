"""From the variants' pictures to the report's numbers: scores, pairwise judgements, oracle rates, and the rows per
relation word and per number of objects. Shared by the command line and the ComfyUI node, which differ only in
how they sample.

In the shapes world (every prompt readable by the pixel oracle) the oracle's rates are `oracle_judge`'s
`oracle_figures(oracle_verdicts(...))` of the same pictures: with one image per prompt they are `sample_eval`'s
figures for the same seed, key for key.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import torch

from ..oracle_judge import oracle_figures, oracle_verdicts
from .formats import PromptItem
from .judge import judge_preference, score_images
from .relations import object_count, relation_words
from .statistics import CONFIDENT_STD, grouped, judge_summary, pair_summary, variant_summary, win_summary

GRID_PROMPTS = 4  # prompts with the largest gains, and as many with the largest losses, per pair


def shapes_world(prompts: list[str]) -> bool:
    """Whether the pixel oracle can read every prompt (then its rates join the report)."""
    from training.dataset.oracle import PromptParseError, parse_prompt

    try:
        return all(parse_prompt(p) for p in prompts)
    except PromptParseError:
        return False


def analyse(items: list[PromptItem], images: dict[str, torch.Tensor], score, *, judge=None, judge_why: str = "",
            oracle: bool | None = None, confident_std: float = CONFIDENT_STD, progress=None) -> dict:  # fmt: skip
    """The report (a JSON-able dict) of variants' images [P, K, H, W, 3] (same noise per (i, j) for every variant).

    `score(images, prompts)` -> a ScoreResult; `judge` a PairwiseJudge or None with `judge_why` saying why not;
    `oracle` None: when every prompt is a shapes-world prompt. `progress(phase, done, total)`."""
    names = list(images)
    prompts = [item.prompt for item in items]
    p, k = images[names[0]].shape[:2]
    flat_prompts = [prompt for prompt in prompts for _ in range(k)]
    if oracle is None:
        oracle = shapes_world(prompts)

    scores, stds, flagged, verdicts = {}, {}, {}, {}
    for n, name in enumerate(names):
        if progress is not None:
            progress("scoring", n, len(names))
        flat = images[name].reshape(p * k, *images[name].shape[2:])
        mean, std, warnings = score_images(score, flat, flat_prompts)
        scores[name] = mean.reshape(p, k)
        stds[name] = None if std is None else std.reshape(p, k)
        flagged[name] = sum(bool(w) for w in warnings)
        if oracle:
            verdicts[name] = oracle_verdicts(flat, flat_prompts)

    per_variant = {}
    for name in names:
        row = variant_summary(scores[name], stds[name], confident_std)
        row["out_of_world_images"] = flagged[name]
        if oracle:
            row["oracle"] = oracle_figures(verdicts[name])
        per_variant[name] = row

    all_ok = {name: np.array([all(v["relations"]) for v in verdicts[name]]).reshape(p, k) for name in verdicts}
    pairs = []
    for n, (a, b) in enumerate(combinations(names, 2)):
        if progress is not None and judge is not None:
            progress("judging", n, len(names) * (len(names) - 1) // 2)
        pair = {"a": a, "b": b, "scorer": pair_summary(scores[a], scores[b], stds[a], stds[b])}
        if judge is not None:
            flat_a = images[a].reshape(p * k, *images[a].shape[2:])
            flat_b = images[b].reshape(p * k, *images[b].shape[2:])
            preference = judge_preference(judge, flat_a, flat_b, flat_prompts).reshape(p, k)
            pair["judge"] = judge_summary(preference)
            pair["_preference"] = preference
        else:
            pair["judge"] = {"available": False, "why": judge_why}
        if oracle:
            # B's per-prompt oracle win: every relation holds for B and not for A (a tie when both or neither)
            wins = ((all_ok[b] & ~all_ok[a]) + 0.5 * (all_ok[b] == all_ok[a])).mean(axis=1)
            pair["oracle_all_ok"] = {**win_summary(wins), "a_rate": float(all_ok[a].mean()),
                                     "b_rate": float(all_ok[b].mean())}  # fmt: skip
        gain = (scores[b] - scores[a]).mean(axis=1)
        order = np.argsort(-gain, kind="stable")
        pair["largest_gains"] = [int(i) for i in order[:GRID_PROMPTS] if gain[i] > 0]
        pair["largest_losses"] = [int(i) for i in order[::-1][:GRID_PROMPTS] if gain[i] < 0]
        pairs.append(pair)

    relations = [relation_words(prompt) for prompt in prompts]
    counts = [object_count(item.prompt, item.objects) for item in items]
    report = {
        "prompts": p, "images_per_prompt": k, "variants": names, "oracle": bool(oracle), "confident_std": confident_std,
        "per_variant": per_variant,
        "pairs": [{key: v for key, v in pair.items() if not key.startswith("_")} for pair in pairs],
        "per_relation": _rows(grouped(relations), names, scores, all_ok, pairs),
        "per_objects": _rows(grouped([[c if c is not None else "unknown"] for c in counts]), names, scores, all_ok,
                             pairs),
        "per_prompt": [
            {"prompt": item.prompt, "source_id": item.source_id, "category": item.category, "relations": relations[i],
             "objects": counts[i], "scores": {name: scores[name][i].round(5).tolist() for name in names},
             **({"oracle_all_ok": {name: all_ok[name][i].tolist() for name in names}} if oracle else {})}
            for i, item in enumerate(items)
        ],
    }  # fmt: skip
    if progress is not None:
        progress("done", 1, 1)
    return report


def _rows(groups: dict, names: list[str], scores: dict, all_ok: dict, pairs: list[dict]) -> dict:
    """Per group of prompts: their count, each variant's mean score (and oracle rate), each pair's win rate."""
    rows = {}
    for key, idx in sorted(groups.items(), key=lambda kv: (-len(kv[1]), str(kv[0]))):
        row = {"prompts": int(len(idx)), "score_mean": {n: float(scores[n][idx].mean()) for n in names}}
        if all_ok:
            row["oracle_all_ok"] = {n: float(all_ok[n][idx].mean()) for n in names}
        row["pairs"] = []
        for pair in pairs:
            a, b = pair["a"], pair["b"]
            entry = {"a": a, "b": b, "scorer": pair_summary(scores[a][idx], scores[b][idx], None, None)}
            if "_preference" in pair:
                entry["judge"] = judge_summary(pair["_preference"][idx])
            row["pairs"].append(entry)
        rows[str(key)] = row
    return rows
