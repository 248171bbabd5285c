"""Reward training in process on tiny models: outputs, exported scorer, accumulation, LoRA, schedule, config."""

import json

import pytest
import torch

from training.reward import load_scorer
from training.reward.__main__ import main
from training.reward.train.checkpoint import list_checkpoints
from training.reward.train.metrics import read_metrics
from training.reward.train.train_config import (
    ConfigError,
    RewardTrainConfig,
    accumulation_steps,
    load_config,
    presets,
)
from training.reward.train.trainable import lr_factor
from training.reward.train.trainer import train

from .reward_pairs import make_pairs, single_thread  # noqa: F401 (autouse fixture)

PROMPT = "a red square to the left of a blue square"


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("train-pairs"), n=16)


def tiny_config(out, data, preset="tiny", **fields) -> RewardTrainConfig:
    overrides = {"data.train": str(data), "output.dir": str(out), "output.progress": False,
                 "train.steps": 4, "train.batch_size": 4, "train.micro_batch_size": 2, "train.warmup_steps": 1,
                 "output.eval_every": 2, "output.checkpoint_every": 2, "data.val_pairs": 4}
    overrides.update(fields)
    return load_config(preset=preset, overrides=overrides)


def test_training_writes_metrics_curves_checkpoints_and_a_loadable_scorer(pairs_file, tmp_path, capsys):
    out = tmp_path / "run"
    result = train(tiny_config(out, pairs_file))
    records = read_metrics(out / "metrics.jsonl")
    train_rows = [r for r in records if r["kind"] == "train"]
    val_rows = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4] and [r["step"] for r in val_rows] == [2, 4]
    for r in train_rows:
        assert 0 < r["loss"] < 5 and 0 <= r["accuracy"] <= 1 and r["lr"] > 0 and r["grad_norm"] > 0
    assert val_rows[0]["val_pairs"] == 4 and set(val_rows[0]["val_by_perturbations"]) == {"1", "2-3"}
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in list_checkpoints(out)] == ["step_000002", "step_000004"]
    for name in ("trainable.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"):
        assert (out / "checkpoints" / "step_000004" / name).is_file()
    state = json.loads((out / "checkpoints" / "step_000004" / "state.json").read_text())
    assert state["step"] == 4 and state["data"]["position"] == 16 and state["scheduler"]["last_epoch"] == 4
    # the best validation step is the exported scorer, and `score` loads it
    best = min(val_rows, key=lambda r: (-r["val_accuracy"], r["val_loss"]))
    assert result.best["step"] == best["step"] and result.scorer_path == out / "scorer"
    saved = json.loads((out / "scorer" / "spatialscore.json").read_text())
    assert saved["notes"]["step"] == best["step"] and saved["base_model"] is None and saved["weights"] == "full"
    scores = load_scorer(out / "scorer").score([str(pairs_file.parent / "0000_c.png")], PROMPT)
    assert scores.mode == "reward" and torch.isfinite(scores.mean).all()
    rc = main(["score", "--model", str(out / "scorer"), "--prompt", PROMPT, str(pairs_file.parent / "0000_c.png")])
    assert rc == 0 and "mode: reward" in capsys.readouterr().out
    # a second run into the same folder must not silently start over
    with pytest.raises(ConfigError, match="already holds checkpoints"):
        train(tiny_config(out, pairs_file))
    # resuming a finished run does nothing and keeps the records
    again = train(tiny_config(out, pairs_file), resume=True)
    assert again.step == 4 and read_metrics(out / "metrics.jsonl") == records


def test_gradient_accumulation_gives_the_same_updates(pairs_file, tmp_path):
    common = {"train.steps": 3, "data.val": "none", "output.checkpoint_every": 0, "train.learning_rate": 1e-3}
    one = train(tiny_config(tmp_path / "a", pairs_file, **common, **{"train.micro_batch_size": 4}))
    two = train(tiny_config(tmp_path / "b", pairs_file, **common, **{"train.micro_batch_size": 2}))
    losses = [[r["loss"] for r in run.records if r["kind"] == "train"] for run in (one, two)]
    assert losses[0][0] != losses[0][2]  # the weights moved
    assert losses[0] == pytest.approx(losses[1], rel=1e-5, abs=1e-6)


def test_training_learns_an_obvious_difference(tmp_path):
    data = make_pairs(tmp_path / "trivial", n=24, trivial=True)
    result = train(tiny_config(tmp_path / "run", data, **{"train.steps": 16, "train.batch_size": 8,
                                                          "train.micro_batch_size": 8, "output.eval_every": 16,
                                                          "output.checkpoint_every": 0, "data.val_pairs": 6}))
    train_rows = [r for r in result.records if r["kind"] == "train"]
    assert train_rows[-1]["loss"] < 0.5 * train_rows[0]["loss"]
    assert result.best["val_accuracy"] == 1.0


def test_lora_run_trains_adapters_only_and_exports_a_relocatable_scorer(pairs_file, tmp_path):
    out = tmp_path / "lora"
    result = train(tiny_config(out, pairs_file, preset="tiny_lora", **{"train.steps": 2, "output.eval_every": 2}))
    saved = json.loads((result.scorer_path / "spatialscore.json").read_text())
    assert saved["weights"] == "lora" and saved["base_model"] == "../base"
    assert not (result.scorer_path / "model").exists() and (result.scorer_path / "adapter").is_dir()
    from safetensors.torch import load_file

    trained = load_file(str(out / "checkpoints" / "step_000002" / "trainable.safetensors"))
    assert any("lora_B" in k for k in trained) and any("trainable_tokens" in k for k in trained)
    assert any(k.startswith("head.") for k in trained) and not any("visual" in k for k in trained)
    moved = out.parent / "moved"
    out.rename(moved)  # the scorer finds its base through the relative path
    assert torch.isfinite(load_scorer(moved / "scorer").score([str(pairs_file.parent / "0001_c.png")], PROMPT).mean).all()


def test_lr_schedule_warms_up_then_decays():
    config = load_config(overrides={"model.base": "@tiny", "data.train": "x", "output.dir": "y", "train.steps": 10,
                                    "train.warmup_steps": 4, "train.schedule": "cosine", "train.min_lr_ratio": 0.1})
    factors = [lr_factor(s, config) for s in range(10)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4] == pytest.approx(1.0) and all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))
    assert lr_factor(10, config) == pytest.approx(0.1)
    config.train.schedule = "linear"
    assert lr_factor(7, config) == pytest.approx(1 - 0.9 * 3 / 6)


def test_config_errors_name_the_fields():
    with pytest.raises(ConfigError, match="unknown field 'learning_rat' \\(did you mean 'learning_rate'\\?\\)"):
        load_config(overrides={"train.learning_rat": "1"})
    with pytest.raises(ConfigError) as info:
        load_config(overrides={"train.loss": "hinge", "train.steps": "0", "model.weights": "half"})
    message = str(info.value)
    for expected in ("train.loss must be one of gaussian_bt, mc_gaussian_bt, bt", "train.steps must be >= 1",
                     "model.weights must be 'lora' or 'full'", "data.train is empty", "output.dir is empty"):
        assert expected in message
    config = load_config(overrides={"model.base": "b", "data.train": "d", "output.dir": "o",
                                    "train.batch_size": 12, "train.micro_batch_size": 4})
    assert accumulation_steps(config, 1) == 3 and accumulation_steps(config, 3) == 1
    with pytest.raises(ConfigError, match="multiple of 8"):
        accumulation_steps(config, 2)
    for name in presets():  # every shipped preset parses and validates once given data and an output folder
        load_config(preset=name, overrides={"model.base": "b", "data.train": "d", "output.dir": "o"})


def test_train_cli_rejects_malformed_pairs_with_line_numbers(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "chosen": "a.png", "rejected": "b.png"}\n{"prompt": 3}\n')
    rc = main(["train", "--preset", "tiny", "--data", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "line 1: 'chosen' image not found" in err and "line 2: 'prompt' must be" in err
    assert not (tmp_path / "o" / "checkpoints").exists()
    rc = main(["train", "--preset", "tiny", "--data", str(bad), "--out", str(tmp_path / "o"), "--set", "train.x=1"])
    assert rc == 2 and "unknown field 'x'" in capsys.readouterr().err


def test_init_from_a_lora_scorer_continues_its_weights(tiny_base, tmp_path):
    from safetensors.torch import load_file

    from training.reward import ScorerConfig, create_model, save_model
    from training.reward.config import HeadConfig, LoraSettings
    from training.reward.train.trainable import build_model, prepare_for_training

    trained = create_model(tiny_base, ScorerConfig(weights="lora", lora=LoraSettings(rank=4, alpha=8),
                                                   head=HeadConfig(hidden_size=32)), seed=4)
    with torch.no_grad():  # as if trained: LoRA B is no longer zero
        for name, p in trained.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    scorer = save_model(trained, tmp_path / "scorer")
    config = load_config(preset="tiny_lora", overrides={"model.init_from": str(scorer), "data.train": "d",
                                                        "output.dir": str(tmp_path / "o")})
    model = build_model(config, torch.device("cpu"), torch.float32)
    names = prepare_for_training(model, gradient_checkpointing=False)
    assert any("lora_B" in n for n in names) and any("trainable_tokens" in n for n in names)
    assert any(n.startswith("head.") for n in names) and not any("visual" in n for n in names)
    head = load_file(str(scorer / "head.safetensors"))
    for key, value in head.items():
        torch.testing.assert_close(model.head.state_dict()[key], value)
    adapter = load_file(str(scorer / "adapter" / "adapter_model.safetensors"))
    params = dict(model.named_parameters())
    lora_b = [k for k in adapter if "lora_B" in k][0]
    match = [n for n in params if n.endswith(lora_b.split("base_model.model.")[-1].replace(".weight", ".default.weight"))]
    assert match and adapter[lora_b].abs().sum() > 0
    assert torch.equal(params[match[0]].detach(), adapter[lora_b])


def test_gradient_checkpointing_turns_on(tiny_base):
    """On by default on CUDA only, so the CPU runs never reach it; transformers renamed its call in 5.23."""
    from training.reward import ScorerConfig, create_model
    from training.reward.config import HeadConfig, LoraSettings
    from training.reward.train.trainable import prepare_for_training

    model = create_model(tiny_base, ScorerConfig(weights="lora", lora=LoraSettings(rank=4, alpha=8),
                                                 head=HeadConfig(hidden_size=32)), seed=4)
    prepare_for_training(model, gradient_checkpointing=True)
    vlm = model.vlm.get_base_model()
    on = getattr(vlm, "is_activation_checkpointing", None)  # the old name warns from 5.23 on
    assert (vlm.is_gradient_checkpointing if on is None else on) and vlm.config.use_cache is False
