"""Data-parallel training: `accelerate launch` with 2 CPU processes (gloo, DDP) gives the loss curve of 1 process
with the same global batch, within float tolerance."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training.reward.train.metrics import read_metrics
from training.reward.train.train_config import load_config
from training.reward.train.trainer import train

from .reward_pairs import make_pairs, single_thread  # noqa: F401 (autouse fixture)

REPO = Path(__file__).resolve().parents[2]
# 8 pairs a step: 1 process = 4 micro-batches of 2; 2 processes = 2 micro-batches of 2 each. MC loss: its noise
# must not depend on the split either. 6 validation pairs: 3 per process.
SETTINGS = {"train.steps": "4", "train.batch_size": "8", "train.micro_batch_size": "2", "train.warmup_steps": "1",
            "train.loss": "mc_gaussian_bt", "train.mc_samples": "64", "output.checkpoint_every": "4",
            "output.eval_every": "2", "data.val_pairs": "6", "output.progress": "false"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
    data = make_pairs(tmp_path / "pairs", n=32)
    two = tmp_path / "two"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()),
               "-m", "training.reward", "train", "--preset", "tiny", "--data", str(data), "--out", str(two)]
    command += [arg for k, v in SETTINGS.items() for arg in ("--set", f"{k}={v}")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    one = tmp_path / "one"
    train(load_config(preset="tiny", overrides={**SETTINGS, "data.train": str(data), "output.dir": str(one)}))

    state = (two / "checkpoints" / "step_000004" / "state.json").read_text()
    assert '"world_size": 2' in state  # really two processes
    rows = [read_metrics(run / "metrics.jsonl") for run in (one, two)]
    assert [(r["kind"], r["step"]) for r in rows[0]] == [(r["kind"], r["step"]) for r in rows[1]]
    for a, b in zip(*rows, strict=True):
        keys = ("loss", "accuracy", "margin", "std") if a["kind"] == "train" else ("val_loss", "val_accuracy")
        for key in keys:
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-6), (a["step"], key)
        if a["kind"] == "val":
            assert a["val_pairs"] == b["val_pairs"] == 6
    assert rows[0][-2]["loss"] != rows[0][0]["loss"]  # training moved the weights
    weights = [load_file(str(run / "checkpoints" / "step_000004" / "trainable.safetensors")) for run in (one, two)]
    assert set(weights[0]) == set(weights[1])
    for name, tensor in weights[0].items():
        if name == "head.out.bias":
            # Its mean entry shifts both rewards of a pair alike: its true gradient is exactly 0, so what it
            # gets is float rounding, which Adam's normalisation turns into lr-sized steps of either sign.
            # The rewards' differences, which are all the losses see, are compared above.
            tensor, other = tensor[1:], weights[1][name][1:]
        else:
            other = weights[1][name]
        torch.testing.assert_close(other, tensor, rtol=1e-3, atol=1e-4, msg=name)
