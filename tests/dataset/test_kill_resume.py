"""A real `python -m training.dataset build` killed with SIGKILL at several points, then rerun with the same
arguments, ends with exactly the folder an uninterrupted build writes (manifest bytes and every image)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .helpers import quiet_build, shapes_config, snapshot

ROOT = Path(__file__).resolve().parents[2]
PAIRS, CHUNK, SEED = 160, 8, 5


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "training.dataset", "build", "--world", "shapes", "--pairs", str(PAIRS),
            "--seed", str(SEED), "--chunk", str(CHUNK), "--out", str(out), "--no-progress"]


def _rows(out: Path) -> int:
    try:
        return (out / "manifest.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _run_and_kill(out: Path, at_rows: int | None, after_s: float | None = None) -> tuple[int, int]:
    """Start a build, SIGKILL it once the manifest has `at_rows` rows (or after `after_s` seconds)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(_command(out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = time.monotonic()
    while proc.poll() is None:
        if (at_rows is not None and _rows(out) >= at_rows) or (after_s is not None and time.monotonic() - start > after_s):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, -signal.SIGKILL), err.decode()
    return proc.returncode, _rows(out)


def test_sigkill_anywhere_then_resume_equals_uninterrupted(tmp_path):
    ref = tmp_path / "reference"
    quiet_build(shapes_config(ref, pairs=PAIRS, seed=SEED, chunk_pairs=CHUNK))
    expected = snapshot(ref)

    out = tmp_path / "killed"
    outcomes = [_run_and_kill(out, None, after_s=0.4)]  # most likely while starting up
    for target in (1, PAIRS // 3, 2 * PAIRS // 3, PAIRS):  # mid-build, and around the final rewrite
        outcomes.append(_run_and_kill(out, target))
    killed_mid_build = [rows for rc, rows in outcomes if rc == -signal.SIGKILL and 0 < rows < PAIRS]
    print("kill outcomes (returncode, rows):", outcomes)
    assert len(killed_mid_build) >= 2, outcomes

    done = subprocess.run(_command(out), cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr
    assert f"pairs: {PAIRS}" in done.stdout
    assert snapshot(out) == expected  # same manifest, same images, no duplicates, torn rows or orphans
    assert not list(out.rglob("*.tmp"))
