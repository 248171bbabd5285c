"""Pairwise accuracy of a scorer on a shapes dataset by number of objects and of perturbations.

`python -m training.reward evaluate` reports perturbations and relations; the shapes world also needs the 2- vs
3-object split, which the manifest does not record: it is read from the prompt.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from PIL import Image

from ...dataset.oracle import parse_prompt
from ..scorer import load_scorer


def n_objects(prompt: str) -> int:
    return len({c for r in parse_prompt(prompt) for c in (r.subject[0], r.object[0])})


def accuracy_by_objects(model: str, data: Path, limit: int = 0, batch: int = 64) -> dict:
    rows = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines() if x.strip()]
    if limit:
        rows = rows[:limit]
    scorer = load_scorer(model, batch_size=batch, device="cpu")
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i in range(0, len(rows), batch // 2):
        chunk = rows[i: i + batch // 2]
        images, prompts = [], []
        for r in chunk:
            images += [Image.open(data / r["chosen"]).convert("RGB"), Image.open(data / r["rejected"]).convert("RGB")]
            prompts += [r["prompt"], r["prompt"]]
        means = scorer.score(images, prompts).mean
        for j, r in enumerate(chunk):
            ok = int(float(means[2 * j]) > float(means[2 * j + 1]))
            for key in ("all", f"objects={n_objects(r['prompt'])}", f"perturbations={r['perturbations']}"):
                groups[key][0] += ok
                groups[key][1] += 1
    return {k: {"accuracy": round(v[0] / v[1], 4), "pairs": v[1]} for k, v in sorted(groups.items())}


def object_fault_accuracy(model: str, data: Path, limit: int = 0, batch: int = 64, seed: int = 0) -> dict:
    """How often the scorer prefers a held-out perfect picture to the same scene with one object-level fault
    (shapes_objects.KINDS: an object dropped, recoloured, doubled, bars or extra colours added), per kind."""
    import random

    from ...dataset.scene import Scene
    from ...dataset.shapes_render import render_shapes
    from .shapes_objects import KINDS, object_fault

    rows = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines() if x.strip()]
    if limit:
        rows = rows[:limit]
    scorer = load_scorer(model, batch_size=batch, device="cpu")
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for kind in KINDS:
        cases = []
        for k, r in enumerate(rows):
            faulty = object_fault(Scene.from_dict(r["scene"]), kind, random.Random(seed * 1_000_003 + k))
            if faulty is not None:
                cases.append((r, faulty))
        for i in range(0, len(cases), batch // 2):
            images, prompts = [], []
            for r, faulty in cases[i: i + batch // 2]:
                with Image.open(data / r["chosen"]) as im:
                    perfect = im.convert("RGB")
                images += [perfect, render_shapes(faulty, size=perfect.width)]
                prompts += [r["prompt"], r["prompt"]]
            means = scorer.score(images, prompts).mean
            wins = int((means[0::2] > means[1::2]).sum())
            for key in ("all", kind):
                groups[key][0] += wins
                groups[key][1] += len(prompts) // 2
    return {k: {"accuracy": round(v[0] / v[1], 4), "pairs": v[1]} for k, v in sorted(groups.items())}


def rerank_accuracy(model: str, data: Path, n: int = 8, limit: int = 0) -> dict:
    """The scorer as a reranker: each scene's perfect picture among n-1 random re-layouts of its objects. top1: the
    best-scored picture is one the pixel oracle accepts (also for 3-object scenes); auc: an accepted picture
    outscores a rejected one of the same scene."""
    import numpy as np

    from ...dataset.oracle import judge
    from .shapes_relayout import candidates_for

    rows = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines() if x.strip()]
    if limit:
        rows = rows[:limit]
    scorer = load_scorer(model, batch_size=64, device="cpu")
    top1: dict[str, list[bool]] = defaultdict(list)
    auc = []
    for k, row in enumerate(rows):
        images = candidates_for({**row, "_dir": str(data)}, n, seed=k)
        holds = [judge(im, row["prompt"]).all for im in images]
        mean = scorer.score(images, row["prompt"]).mean.numpy()
        for key in ("all", f"objects={n_objects(row['prompt'])}"):
            top1[key].append(holds[int(np.argmax(mean))])
        pos, neg = [i for i in range(n) if holds[i]], [i for i in range(n) if not holds[i]]
        if pos and neg:
            auc.append(float(np.mean([mean[i] > mean[j] for i in pos for j in neg])))
    return {**{f"top1 {k}": round(float(np.mean(v)), 4) for k, v in sorted(top1.items())},
            "auc": round(float(np.mean(auc)), 4), "scenes": len(rows)}
