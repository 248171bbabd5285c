r"""Replay pruning schedules on a traced full best-of-N run, judged by the shapes pixel oracle.

    python -m training.bestofn --model shapes --scorer shapes --prompts p.txt --n 16 --keep 16 --prune none \
        --trace --out full16/
    python -m training.bestofn.measure full16/ --n 1 --n 8 --n 16 --schedule 2@0.34 --schedule 4@0.34 ...

A traced `--prune none --keep N` run holds every candidate's x0 score after every step and every finished image.
A pruned run's decisions depend only on those scores (replay.py replays them with the sampler's own Pruner), and its
survivors finish as the very same images (tests/bestofn/test_prune_none.py), so replaying a schedule on the trace
gives that schedule's top-1 pick without sampling again. Best-of-M for M < N is the first M candidates (candidate
i's noise depends only on the prompt seed and i). Forwards are the exact count (`schedule.forwards`). Wall time is
not replayed: measure it with real runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ...common.atomic import write_text
from ...common.output_file import check_output_file
from ..replay import load_run, markdown, measure
from ..schedule import ScheduleError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.bestofn.measure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("run", type=Path, help="a traced --prune none --keep N run folder")
    parser.add_argument("--n", type=int, action="append", default=[], help="full best-of-M rows (M <= N)")
    parser.add_argument("--schedule", action="append", default=[], help="pruned best-of-N rows (KEEP@FRACTION,...)")
    parser.add_argument("--schedule-n", type=int, action="append", default=[],
                        help="also replay every --schedule at this M (default: the run's N)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    try:
        if args.json:  # before the replay (minutes of oracle judging) whose figures it receives
            check_output_file(args.json, "--json", example="measure.json")
        n = load_run(args.run)[0]["n"]
        configs = [(m, "none") for m in args.n]
        configs += [(m, s) for m in (args.schedule_n or [n]) for s in args.schedule]
        result = measure(args.run, configs)
    except (ValueError, OSError, ScheduleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        write_text(args.json, json.dumps(result, indent=1) + "\n")
    print(markdown(result))
    print(f"rank correlation by step: {result['rank_correlation_by_step']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
