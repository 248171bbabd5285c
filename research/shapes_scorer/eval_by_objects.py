"""Pairwise accuracy of a scorer on a shapes dataset, by number of objects and by number of perturbations.

(`python -m training.reward evaluate` gives the by-perturbation and by-relation table; the shapes world also
needs the 2- vs 3-object split, which the manifest does not record: it is read from the prompt.)

    python research/shapes_scorer/eval_by_objects.py --model shapes --data HELDOUT [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# The recipe's evaluation is the one this research script used to carry a copy of.
from training.reward.recipes.shapes_eval import accuracy_by_objects as evaluate  # noqa: E402


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
