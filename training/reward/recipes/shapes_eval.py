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
