"""GRPO never loses a user's files, never runs twice on one folder, stops at the first NaN, applies changed
settings on resume, and answers bad settings with a message (issue 12)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from training.common.finite import NonFiniteError
from training.common.run_folder import RunFolderError, exclusive_lock
from training.grpo import __main__ as cli
from training.grpo.config import ConfigError, load_config
from training.grpo.trainer import train

from ..threads import one_torch_thread
from .conftest import tiny_config

SMALL = {"prompts.num_eval": 0, "prompts.per_step": 1, "output.checkpoint_every": 1}


@pytest.fixture(scope="module")
def models(tiny_flux_dir, tiny_scorer_full):
    with one_torch_thread():
        yield tiny_flux_dir, tiny_scorer_full


def _cli(out, flux, scorer, *extra) -> list[str]:
    return ["--preset", "tiny", "--out", str(out), "--model.path", str(flux), "--reward.path", str(scorer),
            "--prompts.num_eval", "0", "--prompts.per_step", "1", "--output.checkpoint_every", "1", *extra]


def test_foreign_output_folder_is_refused_and_left_as_it_was(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"model_type": "mine"}')
    (tmp_path / "metrics.jsonl").write_text("my numbers\n")
    assert cli.main(["--preset", "tiny", "--steps", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not empty and is not a grpo run (found config.json, metrics.jsonl)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "metrics.jsonl"]
    assert (tmp_path / "metrics.jsonl").read_text() == "my numbers\n"


def test_a_second_run_on_a_locked_folder_fails_at_once(tmp_path, models):
    flux, scorer = models
    with exclusive_lock(tmp_path, "GRPO run"):
        with pytest.raises(RunFolderError, match="another GRPO run is writing"):
            train(tiny_config(tmp_path, flux, scorer, **SMALL))
    assert not (tmp_path / "metrics.jsonl").exists()


def test_learning_rate_1e30_stops_without_saving_nan_and_the_run_resumes(tmp_path, models, capsys):
    flux, scorer = models
    out = tmp_path / "run"
    assert cli.main(_cli(out, flux, scorer, "--steps", "3", "--train.learning_rate", "1e30")) == 2
    err = capsys.readouterr().err
    assert "training stopped before it was used or saved" in err and "Traceback" not in err
    assert not (out / "lora.safetensors").exists()
    for folder in (out / "checkpoints").glob("step_*"):
        for name, tensor in load_file(str(folder / "adapter.safetensors")).items():
            assert torch.isfinite(tensor).all(), (folder.name, name)
    metrics = out / "metrics.jsonl"
    for line in metrics.read_text().splitlines() if metrics.exists() else []:
        assert "null" not in line and "NaN" not in line  # no NaN turned silently into null
    # the last good checkpoint (or the fresh start) continues with a sane learning rate
    assert cli.main(_cli(out, flux, scorer, "--steps", "2", "--resume", "--train.learning_rate", "1e-3")) == 0
    for tensor in load_file(str(out / "lora.safetensors")).values():
        assert torch.isfinite(tensor).all()


def test_nan_rewards_stop_the_run_before_any_update(tmp_path, models):
    flux, scorer = models
    from training.reward import ScoreResult

    class NaNScorer:
        mode = "reward"

        def score(self, images, prompts):
            n = len(images)
            return ScoreResult(torch.full((n,), math.nan), torch.zeros(n), "reward")

    with pytest.raises(NonFiniteError, match="step 1: the rewards holds NaN"):
        train(tiny_config(tmp_path, flux, scorer, **SMALL), scorer=NaNScorer())
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "lora.safetensors").exists()


def test_resume_applies_a_changed_learning_rate_and_says_so(tmp_path, models, capsys):
    flux, scorer = models
    train(tiny_config(tmp_path, flux, scorer, **SMALL, **{"train.steps": 1}))
    capsys.readouterr()
    train(tiny_config(tmp_path, flux, scorer, **SMALL, **{"train.steps": 2, "train.learning_rate": 0.5}),
          resume=True)
    assert "train.learning_rate: 0.003 -> 0.5" in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in records] == [0.003, 0.5]  # the optimizer really used it
    assert json.loads((tmp_path / "config.json").read_text())["train"]["learning_rate"] == 0.5


@pytest.mark.parametrize("field, value, message", [
    ("train.adam_beta1", "1.5", "train.adam_beta1 must be in [0, 1), got 1.5"),
    ("sample.guidance", "nan", "sample.guidance must be a finite number, got nan"),
    ("sample.noise_level", "inf", "sample.noise_level must be a finite number, got inf"),
])  # fmt: skip
def test_bad_numbers_are_refused_before_any_model_loads(field, value, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        load_config(preset="tiny", overrides={field: value, "output.dir": "x"})


def test_lora_targets_matching_nothing_is_a_message(tmp_path, models, capsys):
    flux, scorer = models
    assert cli.main(_cli(tmp_path / "run", flux, scorer, "--steps", "1", "--lora.targets", "attn.nope")) == 2
    assert "lora.targets ['attn.nope'] match no module" in capsys.readouterr().err


def test_missing_or_corrupt_reward_path_fails_validation(tmp_path, models, capsys):
    flux, scorer = models
    assert cli.main(_cli(tmp_path / "a", flux, "no_such_scorer", "--steps", "1")) == 2
    assert "reward.path: no_such_scorer is neither a folder nor a shipped scorer name" in capsys.readouterr().err
    import shutil

    broken = shutil.copytree(scorer, tmp_path / "broken")
    (broken / "head.safetensors").write_bytes(b"")
    assert cli.main(_cli(tmp_path / "b", flux, broken, "--steps", "1", "--dry-run")) == 2
    assert "head.safetensors: not a readable .safetensors file" in capsys.readouterr().err
