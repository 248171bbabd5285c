"""Pairwise accuracy of a scorer on a shapes dataset, by number of objects and by number of perturbations.

(`python -m training.reward evaluate` gives the by-perturbation and by-relation table; the shapes world also
needs the 2- vs 3-object split, which the manifest does not record: it is read from the prompt.)

    python research/shapes_scorer/eval_by_objects.py --model shapes --data HELDOUT [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from PIL import Image  # noqa: E402

from training.dataset.oracle import parse_prompt  # noqa: E402
from training.reward.scorer import load_scorer  # noqa: E402


def n_objects(prompt: str) -> int:
    return len({c for r in parse_prompt(prompt) for c in (r.subject[0], r.object[0])})


def evaluate(model: str, data: Path, limit: int = 0, batch: int = 64) -> dict:
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


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    result = evaluate(args.model, Path(args.data), args.limit)
    for k, v in result.items():
        print(f"{k:18s} {100 * v['accuracy']:6.2f}%  ({v['pairs']} pairs)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
