"""Config loading, CLI overrides and validation: bad configs fail with clear errors before any model loads."""

from __future__ import annotations

import pytest

from training.grpo import __main__ as cli
from training.grpo import trainer
from training.grpo.config import ConfigError, GRPOConfig, check_paths, check_world, load_config


@pytest.fixture
def no_model_loading(monkeypatch):
    """Make any model load (or the trainer itself) fail loudly: errors must come before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was checked")

    monkeypatch.setattr(trainer, "build_policy", refuse)
    monkeypatch.setattr(trainer, "build_scorer", refuse)
    monkeypatch.setattr(trainer, "train", refuse)
    monkeypatch.setattr("training.grpo.flux_policy.FluxPolicy.from_folder", refuse)


def test_paper_preset_holds_the_paper_settings():
    config = load_config(preset="flux_dev_spatial")
    assert (config.sample.group_size, config.train.top_k, config.lora.rank) == (24, 6, 32)
    assert config.train.learning_rate == 3e-4
    assert (config.sample.num_steps, config.sample.height, config.sample.width) == (6, 512, 512)
    assert config.sample.noise_level == 0.9
    assert config.train.beta > 0
    assert {"attn.to_q", "attn.add_q_proj", "ff.net.0.proj", "ff_context.net.2", "proj_mlp"} <= set(config.lora.targets)
    assert config.prompts.train_file.endswith("spatial_prompts.txt")  # resolved next to the TOML file


def test_cli_flags_override_any_field():
    config = load_config(preset="tiny", overrides={
        "train.learning_rate": "1e-4", "lora.targets": "attn.to_q,attn.to_k", "sample.ode_outside_window": "true",
        "train.timestep_window": "[1, 3]", "output.dir": "x", "reward.device": "cpu",
    })  # fmt: skip
    assert config.train.learning_rate == 1e-4
    assert config.lora.targets == ["attn.to_q", "attn.to_k"]
    assert config.sample.ode_outside_window is True
    assert config.trained_steps() == [1, 2]
    assert config.reward.device == "cpu"


def test_trained_steps_from_fraction():
    config = load_config(preset="tiny", overrides={"sample.num_steps": "6", "train.timestep_fraction": "0.5"})
    assert config.trained_steps() == [0, 1, 2]


def test_unknown_field_in_toml_is_named_with_a_suggestion(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nlearning_rat = 1e-4\n")
    with pytest.raises(ConfigError, match=r"unknown field 'learning_rat' \(did you mean 'learning_rate'\?\)"):
        load_config(path)
    path.write_text("[trian]\nsteps = 3\n")
    with pytest.raises(ConfigError, match="unknown field 'trian'"):
        load_config(path)


def test_unknown_or_mistyped_cli_field(no_model_loading, capsys):
    assert cli.main(["--preset", "tiny", "--train.stepz", "3"]) == 2
    assert "unknown field 'stepz'" in capsys.readouterr().err
    assert cli.main(["--preset", "tiny", "--sample.group_size", "many"]) == 2
    assert "sample.group_size: expected int, got 'many'" in capsys.readouterr().err


def test_group_not_divisible_by_the_per_device_batch(no_model_loading, capsys):
    assert cli.main(["--preset", "tiny", "--sample.group_size", "10", "--sample.batch_size", "4"]) == 2
    err = capsys.readouterr().err
    assert "sample.group_size (G=10) must be divisible by the per-device sampling batch sample.batch_size=4" in err


def test_top_k_more_than_half_the_group(no_model_loading, capsys):
    assert cli.main(["--preset", "tiny", "--train.top_k", "5"]) == 2  # tiny G = 8
    assert "train.top_k=5 is more than half the group (G=8)" in capsys.readouterr().err


def test_missing_model_folder(no_model_loading, capsys, tmp_path):
    assert cli.main(["--preset", "flux_dev_spatial", "--model.path", str(tmp_path / "nope"),
                     "--reward.path", str(tmp_path / "scorer"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"model.path: folder not found: {tmp_path / 'nope'}" in err
    assert f"reward.path: folder not found: {tmp_path / 'scorer'}" in err  # every problem at once


def test_model_folder_that_is_not_a_pipeline(tmp_path):
    (tmp_path / "flux").mkdir()
    config = load_config(preset="flux_dev_spatial", overrides={"model.path": str(tmp_path / "flux"),
                                                               "reward.path": "shapes"})
    with pytest.raises(ConfigError, match="has no model_index.json"):
        check_paths(config)
    with pytest.raises(ConfigError, match="model.path is empty"):
        check_paths(load_config(preset="flux_dev_spatial", overrides={"reward.path": "shapes"}))
    (tmp_path / "flux" / "model_index.json").write_text('{"_class_name": "StableDiffusion3Pipeline"}')
    with pytest.raises(ConfigError, match="holds a StableDiffusion3Pipeline, expected a FluxPipeline"):
        check_paths(config)


def test_reward_folder_that_is_not_a_scorer(tmp_path):
    (tmp_path / "flux").mkdir()
    (tmp_path / "flux" / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    config = load_config(preset="flux_dev_spatial", overrides={"model.path": str(tmp_path / "flux"),
                                                               "reward.path": str(tmp_path / "flux")})
    with pytest.raises(ConfigError, match="reward.path: .* is a diffusers pipeline, not a SpatialScore"):
        check_paths(config)


def test_all_problems_reported_together():
    config = GRPOConfig()
    config.sample.noise_level = 0.0
    config.train.learning_rate = -1.0
    config.model.dtype = "float8"
    with pytest.raises(ConfigError) as info:
        from training.grpo.config import validate

        validate(config)
    message = str(info.value)
    assert "sample.noise_level must be > 0" in message
    assert "train.learning_rate must be > 0" in message
    assert "model.dtype must be one of" in message


def test_world_size_must_split_the_step_into_micro_batches():
    config = load_config(preset="tiny")  # P=2, G=8, sampling batch 4: 4 micro-batches
    check_world(config, 2)
    check_world(config, 4)
    with pytest.raises(ConfigError, match="on 3 processes"):
        check_world(config, 3)


def test_dry_run_prints_the_resolved_config(capsys):
    assert cli.main(["--preset", "tiny", "--dry-run", "--steps", "7"]) == 0
    assert '"steps": 7' in capsys.readouterr().out
