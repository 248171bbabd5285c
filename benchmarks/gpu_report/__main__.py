"""python -m benchmarks.gpu_report --out DIR [--budget-s 480] [--only NAME...] [--shape full|mini] [--check]

Every owed GPU figure in one command (see the package docstring for the items and the budget plan).
"""

from __future__ import annotations

import argparse
import math
import shlex
import signal
import sys
import time
from pathlib import Path

from training.common.run_folder import RunFolderError, check_run_folder, owned_run_folder

from . import device, plan
from .items import ITEMS, NAMES
from .report import Report
from .runner import run_item

STAGE = "gpu-report"  # the run-folder marker's stage: a rerun may write into its own earlier --out
TIMEOUT_FACTOR = 3.0  # an item may overrun its plan this much (within the budget) before it is killed


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument reported as one line (no usage block) and exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the arguments)\n")


def parse(argv):
    p = OneLineParser(prog="python -m benchmarks.gpu_report", description=__doc__.splitlines()[2])
    p.add_argument("--out", help="folder for gpu_report.json, gpu_report.md and items/ (new, empty or an earlier "
                                 "report's)")
    p.add_argument("--budget-s", type=float, default=480.0,
                   help="seconds for the whole report, start-up included (default 480: 8 minutes)")
    p.add_argument("--only", nargs="+", metavar="NAME", help=f"run only these items: {', '.join(NAMES)}")
    p.add_argument("--shape", choices=["full", "mini"], default="full",
                   help="full: the real shapes on a CUDA GPU; mini: the same code at toy size on the CPU (the test)")
    p.add_argument("--check", action="store_true",
                   help="preflight only: the device, whether diffusers is importable, the budget plan; runs nothing")
    args = p.parse_args(argv)
    if not math.isfinite(args.budget_s) or args.budget_s <= 0:
        p.exit(2, f"--budget-s: a number of seconds above 0, got {args.budget_s:g}\n")
    unknown = [n for n in args.only or [] if n not in NAMES]
    if unknown:
        p.exit(2, f"--only: unknown item {', '.join(map(repr, unknown))}; the items are {', '.join(NAMES)}\n")
    if not args.check and not args.out:
        p.exit(2, "--out: required (a new or empty folder for the report), or --check for the preflight alone\n")
    if args.out:
        try:
            check_run_folder(args.out, STAGE)
        except RunFolderError as exc:
            p.exit(2, f"--out: {exc}\n")
    return args


def plan_lines(shape: str, budget_s: float, selected: list[str], info: dict) -> list[str]:
    lines, total = [], plan.PROBE_S if shape == "full" else 0.0
    for item in ITEMS:
        if item.name not in selected:
            continue
        cost = plan.cost(item, shape)
        if cost is None:
            lines.append(f"  {item.name:<16} nothing to run ({(item.blocked() or 'no runner').split(':')[0]})")
            continue
        if item.needs_diffusers and not info.get("diffusers"):
            lines.append(f"  {item.name:<16} skipped: no diffusers (above)")
            continue
        total += cost.seconds
        lines.append(f"  {item.name:<16} {cost.seconds:4.0f} s, {cost.gib:5.1f} GiB  ({cost.line()})")
    where = "an H100 by the dry runs" if shape == "full" else "the development CPU"
    return [f"plan on {where}: {total:.0f} s of the {budget_s:.0f} s budget"
            + (f" (device probe {plan.PROBE_S:.0f} s included)" if shape == "full" else "")] + lines


def main(argv=None) -> int:
    started = time.monotonic()
    args = parse(argv)
    selected = args.only or NAMES
    try:
        info = device.probe(hide_cuda=args.shape == "mini")
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"gpu_report: {exc}", file=sys.stderr)
        return 1
    preflight = [f"device: {device.describe(info)}", device.diffusers_line(info)]
    preflight += plan_lines(args.shape, args.budget_s, selected, info)
    if args.shape == "full" and not info["cuda"]:
        preflight.append(f"no CUDA GPU here (torch {info['torch']}): --shape full needs one; --shape mini runs the "
                         "same code at toy size on a CPU")
    print("\n".join(preflight), flush=True)
    if args.check:
        return 0
    if args.shape == "full" and not info["cuda"]:
        return 2
    command = "python -m benchmarks.gpu_report " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv))
    out = Path(args.out)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with owned_run_folder(out, STAGE, "gpu report"):
            report = Report(out, args.shape, args.budget_s, command, info, preflight, started)
            report.write()
            try:
                for item in ITEMS:
                    run_one(report, item, args, info, selected, started)
            except KeyboardInterrupt:
                report.write("interrupted: " + report.summary())
                print(f"gpu_report: interrupted; what was measured is in {out / 'gpu_report.md'}", file=sys.stderr)
                return 130
            summary = report.summary()
            report.write(summary, finished=True)
    except RunFolderError as exc:
        print(f"gpu_report: --out: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(summary)
    return 0


def _interrupt(signum, frame):
    """SIGTERM (a job's time limit) unwinds like Ctrl-C: the running item is killed and the report written."""
    raise KeyboardInterrupt


def run_one(report: Report, item, args, info: dict, selected: list[str], started: float) -> None:
    """Decide whether the item can run (selected, built, diffusers, budget, memory), run it, record the outcome."""
    name = item.name
    if name not in selected:
        report.update(name, status="not selected", reason="not in --only")
        return
    blocked = item.blocked()
    if blocked:
        report.update(name, status="not built yet", reason=blocked.removeprefix("not built yet: "))
        print(f"{name}: not built yet")
        return
    cost = plan.cost(item, args.shape)
    report.update(name, plan_s=round(cost.seconds, 1), plan_parts={k: round(v, 1) for k, v in cost.parts.items()},
                  need_gib=round(cost.gib, 2))
    left = args.budget_s - (time.monotonic() - started)
    free = device.free_gib(info)
    if item.needs_diffusers and not info.get("diffusers"):
        reason = device.diffusers_missing(info)
    elif cost.seconds > left:
        reason = f"needs about {cost.seconds:.0f} s by the plan, {max(left, 0):.0f} s of the budget left"
    elif free is not None and not plan.fits_memory(cost.gib, free):
        reason = (f"needs about {cost.gib:.1f} GiB (the dry run's peak + {plan.CONTEXT_GIB:.0f} GiB CUDA context, "
                  f"within {plan.FRAGMENTATION:.0%} of free memory), {free:.1f} GiB free")
    else:
        reason = None
    if reason:
        report.update(name, status="skipped", reason=reason)
        print(f"{name}: skipped: {reason}")
        return
    timeout = min(left, TIMEOUT_FACTOR * cost.seconds)
    report.update(name, status="running", log=f"items/{name}.log")
    try:
        outcome = run_item(name, args.shape, report.folder, timeout)
    except KeyboardInterrupt:
        report.update(name, status="interrupted", reason="the report was interrupted while this item ran")
        raise
    report.measured(item, outcome.record)
    report.update(name, status=outcome.status, reason=outcome.reason, wall_s=round(outcome.wall_s, 1))
    print(f"{name}: {outcome.status} in {outcome.wall_s:.0f} s (plan {cost.seconds:.0f} s)"
          + (f": {outcome.reason}" if outcome.reason else ""), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
