"""The trainer end to end on the tiny preset: the CLI run and its outputs, kill + resume, and 2 processes == 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from training.grpo import __main__ as cli
from training.grpo.trainer import train

from ..threads import one_torch_thread
from .conftest import tiny_config

REPO = Path(__file__).resolve().parents[2]
QUIET = {"prompts.num_eval": 0}  # no eval grids: the runs below compare training only


def _env() -> dict:
    # One thread per process, like this module's in-process runs (see `one_thread`): matmul reductions, and so the
    # last bits of every gradient, depend on the thread count.
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _assert_same_lora(a: Path, b: Path, atol: float) -> None:
    la, lb = load_file(str(a)), load_file(str(b))
    assert la.keys() == lb.keys()
    for key in la:
        torch.testing.assert_close(la[key], lb[key], rtol=0, atol=atol, msg=key)


@pytest.fixture(scope="module")
def one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def models(tiny_flux_dir, tiny_scorer_full, one_thread):
    return tiny_flux_dir, tiny_scorer_full


# One prompt per step: in the 2-process run below, each group's 8 samples are split 4 + 4 over the processes.
REFERENCE = {"train.steps": 4, "output.checkpoint_every": 1, "output.keep_checkpoints": 4, "prompts.per_step": 1}


@pytest.fixture(scope="module")
def reference_run(models, tmp_path_factory):
    """An uninterrupted 4-step tiny run on one process, checkpointed (with its LoRA) after every step."""
    flux, scorer = models
    out = tmp_path_factory.mktemp("reference") / "run"
    train(tiny_config(out, flux, scorer, **QUIET, **REFERENCE))
    return out


def test_cli_tiny_preset_writes_everything_and_its_lora_loads_in_diffusers(tmp_path):
    from diffusers import FluxPipeline

    out = tmp_path / "run"
    assert cli.main(["--preset", "tiny", "--steps", "2", "--out", str(out)]) == 0

    records = _records(out)
    assert [r["step"] for r in records] == [0, 1, 2]
    for key in ("reward_mean", "reward_std", "kept_reward_mean", "kl", "clip_frac", "ratio_mean", "ratio_min",
                "ratio_max", "zero_std_group_frac", "loss", "time_sample", "time_reward", "time_train"):  # fmt: skip
        assert isinstance(records[1][key], float), key
    assert records[2]["eval_reward_mean"] is not None and records[0]["eval_reward_mean"] is not None
    assert records[1]["kept_frac"] == 0.5  # tiny: G=8, top_k=2 -> 4 of 8 kept
    for png in ("reward_curve.png", "samples/step_000000.png", "samples/step_000002.png"):
        with Image.open(out / png) as img:
            assert img.format == "PNG" and img.width > 100
    assert (out / "checkpoints" / "step_000002" / "state.json").is_file()

    pipe = FluxPipeline.from_pretrained(str(out / "tiny_models" / "flux"), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)

    def image():
        return pipe("a cat under a table", height=64, width=64, num_inference_steps=4, output_type="pt",
                    generator=torch.Generator().manual_seed(0)).images  # fmt: skip

    base = image()
    pipe.load_lora_weights(str(out / "lora.safetensors"))
    assert "default_0" in pipe.transformer.peft_config
    assert (image() - base).abs().max() > 1e-4  # the trained LoRA changes what the pipeline draws


def test_existing_checkpoints_need_resume(reference_run, models):
    from training.grpo.config import ConfigError

    flux, scorer = models
    with pytest.raises(ConfigError, match="pass --resume"):
        train(tiny_config(reference_run, flux, scorer, **QUIET, **REFERENCE))


def test_progress_moves_inside_every_step_and_changes_nothing(tmp_path, models, reference_run):
    """The progress hook sees each phase of each step start at 0 and advance part by part (4 + 4 samples, 8 scored,
    2 + 2 kept samples trained, one per optimizer update), and the run is bit-for-bit the run without it."""
    flux, scorer = models
    out = tmp_path / "run"
    calls = []
    train(tiny_config(out, flux, scorer, **QUIET, **{**REFERENCE, "train.steps": 2}),
          progress=lambda *args: calls.append(args))
    one_step = [("sampling", 0, 8), ("sampling", 4, 8), ("sampling", 8, 8), ("scoring", 0, 8), ("scoring", 8, 8),
                ("training", 0, 4), ("training", 2, 4), ("training", 4, 4)]
    assert calls == [(step, *call) for step in (1, 2) for call in one_step]
    _assert_same_lora(out / "lora.safetensors", reference_run / "checkpoints" / "step_000002" / "lora.safetensors",
                      atol=0)
    for got, expected in zip(_records(out), _records(reference_run)[:2], strict=True):
        assert (got["rewards"], got["loss"], got["grad_norm"]) == (expected["rewards"], expected["loss"],
                                                                  expected["grad_norm"])


def test_an_exception_in_progress_stops_the_step_before_its_checkpoint(tmp_path, models, reference_run):
    """A UI's Cancel raises from the progress hook: the run stops in the middle of step 2, and the last checkpoint is
    step 1's, the same as the uninterrupted run's."""
    flux, scorer = models
    out = tmp_path / "run"

    class Cancelled(Exception):
        pass

    def cancel_in_step_2(step, phase, done, total):
        if (step, phase, done) == (2, "training", 2):
            raise Cancelled

    with pytest.raises(Cancelled):
        train(tiny_config(out, flux, scorer, **QUIET, **REFERENCE), progress=cancel_in_step_2)
    assert [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith("step_")] == ["step_000001"]
    assert [r["step"] for r in _records(out)] == [1]
    _assert_same_lora(out / "checkpoints" / "step_000001" / "lora.safetensors",
                      reference_run / "checkpoints" / "step_000001" / "lora.safetensors", atol=0)


def test_evaluation_is_a_phase_of_its_own(tmp_path, models):
    """The eval prompts' sampling and scoring, before the first step and after a step's training."""
    flux, scorer = models
    calls = []
    train(tiny_config(tmp_path / "run", flux, scorer, **{**REFERENCE, "train.steps": 1, "prompts.num_eval": 2}),
          progress=lambda *args: calls.append(args))
    # before step 1, then after step 1's training (the last step is always evaluated)
    assert calls[:3] == [(0, "evaluation", 0, 2), (0, "evaluation", 2, 2), (1, "sampling", 0, 8)]
    assert calls[-3:] == [(1, "training", 4, 4), (1, "evaluation", 0, 2), (1, "evaluation", 2, 2)]


def test_killed_and_resumed_equals_uninterrupted(tmp_path, models, reference_run):
    """SIGKILL a CLI run after its step-2 checkpoint, --resume it, compare with a run that was never killed."""
    flux, scorer = models
    killed = tmp_path / "killed"
    args = ["--preset", "tiny", "--out", str(killed), "--model.path", str(flux), "--reward.path", str(scorer),
            "--steps", "4", "--output.checkpoint_every", "1", "--prompts.num_eval", "0", "--prompts.per_step", "1"]  # fmt: skip
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "training.grpo", *args], cwd=REPO, env=_env(),
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + 240
        while not (killed / "checkpoints" / "step_000002" / "state.json").exists():
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "no step-2 checkpoint in time"
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (killed / "lora.safetensors").exists()

    resumed = train(tiny_config(killed, flux, scorer, **QUIET, **REFERENCE), resume=True)
    reference_dir = reference_run

    assert resumed.step == 4
    _assert_same_lora(killed / "lora.safetensors", reference_dir / "lora.safetensors", atol=1e-6)
    got, expected = _records(killed), _records(reference_dir)
    assert [r["step"] for r in got] == [1, 2, 3, 4]  # no duplicated or lost steps in metrics.jsonl
    for a, b in zip(got, expected, strict=True):
        assert a["prompts"] == b["prompts"]
        torch.testing.assert_close(torch.tensor(a["rewards"]), torch.tensor(b["rewards"]), rtol=0, atol=1e-6)
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)


def test_two_processes_give_the_same_advantages_and_loss_as_one(tmp_path, models, reference_run):
    """torchrun --nproc_per_node 2 on the CPU (gloo): each process samples and scores half of the group."""
    flux, scorer = models
    two = tmp_path / "two"
    args = ["--preset", "tiny", "--out", str(two), "--model.path", str(flux), "--reward.path", str(scorer),
            "--steps", "1", "--prompts.per_step", "1", "--prompts.num_eval", "0"]  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "training.grpo", *args], cwd=REPO, env=_env(), capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    a, (b,) = _records(reference_run)[0], _records(two)  # step 1 of the one-process reference run
    assert (a["processes"], b["processes"]) == (1, 2)
    torch.testing.assert_close(torch.tensor(b["rewards"]), torch.tensor(a["rewards"]), rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.tensor(b["advantages"]), torch.tensor(a["advantages"]), rtol=0, atol=1e-5)
    for key in ("loss", "policy_loss", "kl", "ratio_mean", "ratio_min", "ratio_max", "clip_frac", "grad_norm"):
        assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-8), key
    # Gradients agree to float rounding (grad_norm above); Adam's first steps move each weight by about lr * sign(grad),
    # which turns rounding-level differences in near-zero gradients into ~1e-3 * lr differences in the weights.
    _assert_same_lora(reference_run / "checkpoints" / "step_000001" / "lora.safetensors", two / "lora.safetensors",
                      atol=1e-5)


def test_the_shipped_shapes_scorer_is_a_reward_out_of_the_box(tmp_path, models):
    """`--reward.path shapes`: GRPO scores its groups with the pack's own scorer, through the real loader."""
    flux, _ = models
    out = tmp_path / "run"
    prompts = tmp_path / "shapes_prompts.txt"
    prompts.write_text("a red circle to the left of a blue square\na green triangle above a yellow square\n")
    train(tiny_config(out, flux, "shapes", **QUIET, **{"train.steps": 1, "prompts.train_file": str(prompts)}))
    step = _records(out)[-1]
    assert step["step"] == 1 and torch.isfinite(torch.tensor(step["reward_mean"]))
    assert step["reward_std"] > 0 and step["reward_min"] < step["reward_max"]  # it tells the samples apart
