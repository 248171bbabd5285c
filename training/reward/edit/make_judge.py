"""Write a generative-judge folder for a local Qwen2.5-VL / Qwen3-VL chat model (e.g. the released SpatialReward-8B).

    python -m training.reward.edit.make_judge --base /models/SpatialReward-8B --out models/spatialscore/judge
    python -m training.reward.edit.make_judge --base DIR --out OUT --settings judge.json   # your own wording

--settings is a JSON object with any of "template" ({"system", "user"} with {instruction}, {source}, {edited}),
"quality_template" ({"system", "user"} with {edited}, or null for no quality pass), "aggregation" (weights and
exponents, see aggregate.py), "max_new_tokens", "fallback_score"; missing ones keep the pack's defaults.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, type=Path, help="local Qwen2.5-VL / Qwen3-VL chat model folder")
    ap.add_argument("--out", required=True, type=Path, help="the judge folder to write (new or empty)")
    ap.add_argument("--settings", type=Path, help="a JSON file of judge settings (templates, aggregation)")
    args = ap.parse_args(argv)
    from .judge import JUDGE_TYPES, JudgeSettings, model_type, write_judge_folder

    try:
        kind = model_type(args.base)
        if kind not in JUDGE_TYPES:
            raise ValueError(f"--base {args.base}: expected a local Qwen2.5-VL or Qwen3-VL folder (config.json "
                             f"model_type one of {', '.join(JUDGE_TYPES)}), got {kind!r}")
        if args.out.exists() and any(args.out.iterdir()):
            raise ValueError(f"--out {args.out} is not empty; choose a new or empty folder")
        data = {}
        if args.settings:
            try:
                data = json.loads(args.settings.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"--settings {args.settings}: cannot read it as JSON ({exc})") from exc
            if not isinstance(data, dict):
                raise ValueError(f"--settings {args.settings}: expected a JSON object")
        settings = JudgeSettings.from_dict(data)
        write_judge_folder(args.out, args.base.resolve(), settings, notes={"made_by": "training.reward.edit.make_judge"})
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"judge folder: {args.out} (model {args.base}, {kind})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
