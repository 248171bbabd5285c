"""A training run killed with SIGKILL and resumed ends exactly like an uninterrupted run with the same seed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.reward.train.checkpoint import list_checkpoints
from training.reward.train.metrics import read_metrics
from training.reward.train.train_config import load_config
from training.reward.train.trainer import train

from .reward_pairs import make_pairs, single_thread  # noqa: F401 (autouse fixture)

REPO = Path(__file__).resolve().parents[2]
TIMING = ("pairs_per_s", "elapsed_s")
SETTINGS = {"train.steps": "8", "train.batch_size": "4", "train.micro_batch_size": "2", "train.warmup_steps": "2",
            "output.checkpoint_every": "2", "output.eval_every": "3", "data.val_pairs": "4",
            "output.progress": "false", "output.keep_checkpoints": "2"}


def config(out, data):
    return load_config(preset="tiny", overrides={**SETTINGS, "data.train": str(data), "output.dir": str(out)})


def comparable(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    data = make_pairs(tmp_path / "pairs", n=16)
    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "training.reward", "train", "--preset", "tiny", "--data", str(data),
               "--out", str(killed)] + [arg for k, v in SETTINGS.items() for arg in ("--set", f"{k}={v}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    with open(tmp_path / "killed.log", "wb") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while not list_checkpoints(killed):  # kill as soon as the first checkpoint (step 2) is complete
                assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "no checkpoint within 240 s"
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    reached = int(list_checkpoints(killed)[-1].name.split("_")[1])
    assert reached < 8, "the run finished before the kill: the test proved nothing"

    reference = train(config(tmp_path / "reference", data))  # the same seed, never interrupted
    resumed = train(config(killed, data), resume=True)

    expected = comparable(read_metrics(tmp_path / "reference" / "metrics.jsonl"))
    got = comparable(read_metrics(killed / "metrics.jsonl"))
    assert [(r["kind"], r["step"]) for r in got] == [(r["kind"], r["step"]) for r in expected]
    for a, b in zip(got, expected, strict=True):
        for key, value in b.items():
            if isinstance(value, float):
                assert a[key] == pytest.approx(value, rel=1e-5, abs=1e-7), (a["step"], key)
            else:
                assert a[key] == value, (a["step"], key)
    assert resumed.best["step"] == reference.best["step"]
    assert resumed.best["val_accuracy"] == reference.best["val_accuracy"]
    final = [load_file(str(run / "checkpoints" / "step_000008" / "trainable.safetensors"))
             for run in (killed, tmp_path / "reference")]
    assert set(final[0]) == set(final[1])
    for name, tensor in final[1].items():
        torch.testing.assert_close(final[0][name], tensor, rtol=1e-5, atol=1e-6)
