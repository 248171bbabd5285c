"""The edit-pair branches of `python -m training.reward score | train | evaluate` (wired in the cli_*.py modules)."""

from __future__ import annotations

import json
import sys


def run_train_edit(config, args) -> int:
    from .trainer import load_edit_data, train_edit

    if args.dry_run:
        train, val = load_edit_data(config)
        print(json.dumps(config.to_dict(), indent=2))
        print(f"{len(train)} training edit pairs, {len(val)} validation edit pairs")
        return 0
    summary = train_edit(config, resume=args.resume, log=lambda m: print(m, file=sys.stderr))
    best = summary.get("best") or {}
    acc = best.get("val_accuracy")
    print(f"edit scorer: {summary['scorer']} (step {best.get('step')}"
          + (f", validation accuracy {acc:.4f})" if acc is not None else ")"))
    print(f"metrics: {summary['metrics']}  curves: {summary['curves']}")
    return 0
