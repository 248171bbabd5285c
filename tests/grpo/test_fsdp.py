"""FSDP (model.fsdp): torchrun with 2 CPU processes (gloo), the tiny Qwen-Image's frozen weights sharded over them,
trains the LoRA of a 1-process run within 1e-5; configurations a sharded run cannot execute are refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from training.grpo.config import ConfigError, check_world, load_config

REPO = Path(__file__).resolve().parents[2]
SETTINGS = ["--steps", "2", "--prompts.num_eval", "0"]


def _run(out: Path, processes: int, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [sys.executable])  # fmt: skip
    command = [*launcher, "-m", "training.grpo", "--preset", "tiny_qwen_image", "--out", str(out), *SETTINGS, *extra]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_two_sharded_processes_train_the_lora_of_one(tmp_path):
    one = tmp_path / "one"
    _run(one, 1)
    # the same tiny models (built from the same seed) in the 2-process run's folder
    two = tmp_path / "two"
    sharded = _run(two, 2, "--model.fsdp", "true")
    assert "FSDP: the transformer's frozen weights sharded over 2 processes (3 units)" in sharded.stdout
    a, b = load_file(str(one / "lora.safetensors")), load_file(str(two / "lora.safetensors"))
    assert set(a) == set(b)
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    print(f"max |LoRA (2 processes, FSDP) - LoRA (1 process)| = {worst:.2e}")
    assert worst < 1e-5
    assert max(t.abs().max().item() for k, t in a.items() if "lora_B" in k) > 1e-4  # the LoRA did train


def test_fsdp_refuses_uneven_forwards():
    config = load_config(preset="tiny_qwen_image", overrides={"model.fsdp": "true", "output.dir": "x"})
    with pytest.raises(ConfigError, match="num_eval = 0"):
        check_world(config, 2)
    config.prompts.num_eval = 0
    check_world(config, 2)  # 8 kept samples, 2 updates: 2 a process each
    config.prompts.per_step, config.sample.batch_size = 1, 2  # 4 kept samples, 2 a chunk, over 4 processes
    with pytest.raises(ConfigError, match="split evenly over 4 processes"):
        check_world(config, 4)
