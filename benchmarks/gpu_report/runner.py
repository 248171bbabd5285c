"""Run one item in its own process, under a timeout, and read back what it measured (also after a crash or a kill)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .device import ROOT


@dataclass
class Outcome:
    status: str  # "done", "failed", "timed out"
    reason: str
    wall_s: float
    record: dict  # the child's result file: measured, info, parts_failed (empty if it wrote nothing)


def last_line(log: Path) -> str:
    """The last non-empty line of a log (an exception's message, e.g. torch.OutOfMemoryError), shortened."""
    try:
        lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return (lines[-1][:300] if lines else "no output")


def run_item(name: str, shape: str, folder: Path, timeout_s: float) -> Outcome:
    """python -m benchmarks.gpu_report.child NAME in a new process group (killed whole on timeout or interrupt);
    its output goes to folder/items/NAME.log, its figures to folder/items/NAME.json."""
    items = folder / "items"
    items.mkdir(parents=True, exist_ok=True)
    result, log = items / f"{name}.json", items / f"{name}.log"
    result.unlink(missing_ok=True)  # a previous run's figures must not pass for this one's
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    if shape == "mini":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the mini shape is the CPU check, wherever it runs
    cmd = [sys.executable, "-m", "benchmarks.gpu_report.child", name, "--shape", shape, "--result", str(result)]
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True)
        try:
            code = proc.wait(timeout=max(timeout_s, 1.0))
            status, reason = ("done", "") if code == 0 else ("failed", f"exit {code}: {last_line(log)}")
        except subprocess.TimeoutExpired:
            _kill(proc)
            status, reason = "timed out", f"killed after {timeout_s:.0f} s (its time from the budget)"
        except BaseException:  # the report itself interrupted: take the item down with it, then go on unwinding
            _kill(proc)
            raise
    try:
        record = json.loads(result.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    if status == "done" and record.get("parts_failed"):
        status = "partial"
        reason = "; ".join(f"{part}: {why}" for part, why in record["parts_failed"].items())
    return Outcome(status, reason, time.monotonic() - started, record)


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the item's process group (it and anything it started), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
