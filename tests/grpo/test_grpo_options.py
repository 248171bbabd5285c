"""GRPO options added for the RL proof: the LoRA EMA, the time budget, truncated timestep fractions, the oracle as
an eval judge and as an ablation reward, and the auto T5 length."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from training.grpo.config import ConfigError, load_config
from training.grpo.ema import LoraEMA
from training.grpo.trainer import train

from ..threads import one_torch_thread
from .conftest import tiny_config

SMALL = {"prompts.num_eval": 0, "prompts.per_step": 1, "output.checkpoint_every": 1}


@pytest.fixture(scope="module")
def models(tiny_flux_dir, tiny_scorer_full):
    with one_torch_thread():
        yield tiny_flux_dir, tiny_scorer_full


def test_timestep_fraction_truncates_like_flow_grpo():
    config = load_config(preset="tiny", overrides={"sample.num_steps": "6", "train.timestep_fraction": "0.99",
                                                   "output.dir": "x"})  # fmt: skip
    assert config.trained_steps() == [0, 1, 2, 3, 4]  # int(0.99 * 6) = 5 (rounding would train all 6)
    config.train.timestep_fraction = 0.5
    assert config.trained_steps() == [0, 1, 2]


def test_ema_follows_the_weights_and_swaps_back_exactly():
    p = torch.nn.Parameter(torch.zeros(3))
    ema = LoraEMA({"p": p}, decay=0.5)
    with torch.no_grad():
        p.fill_(4.0)
    ema.update({"p": p})
    assert torch.equal(ema.shadow["p"], torch.full((3,), 2.0))
    with ema.swapped_in({"p": p}):
        assert torch.equal(p.detach(), torch.full((3,), 2.0))
    assert torch.equal(p.detach(), torch.full((3,), 4.0))
    with pytest.raises(ValueError, match="decay"):
        LoraEMA({"p": p}, decay=1.0)


def test_ema_warmup_is_flow_grpos_decay_schedule():
    """min(decay, (1 + n) / (10 + n)) at update n: the first updates nearly replace the average (Flow-GRPO's
    EMAModuleWrapper.get_current_decay); without warmup every update uses the decay itself."""
    p = torch.nn.Parameter(torch.zeros(1))
    ema = LoraEMA({"p": p}, decay=0.9, warmup=True)
    assert [round(ema.decay_at(n), 4) for n in (0, 4, 80, 1000)] == [0.1, 0.3571, 0.9, 0.9]
    with torch.no_grad():
        p.fill_(1.0)
    ema.update({"p": p}, 0)
    assert torch.allclose(ema.shadow["p"], torch.tensor([0.9]))  # 0.1 * 0 + 0.9 * 1
    plain = LoraEMA({"p": p}, decay=0.9)
    assert plain.decay_at(0) == 0.9


def test_resume_refuses_another_algorithm_or_ema_and_reads_old_checkpoints(tmp_path):
    """train.algorithm, sample.deterministic and the EMA settings must match; a checkpoint written before they
    existed ran with their defaults, so it resumes a default run and refuses an nft one."""
    import json

    from training.grpo.checkpoint import CheckpointError, check_compatible, list_checkpoints, save_checkpoint
    from training.grpo.config import GRPOConfig

    config = GRPOConfig()
    params = {"w": torch.nn.Parameter(torch.zeros(2))}
    save_checkpoint(tmp_path, 1, params, torch.optim.AdamW(params.values()), config.to_dict())
    ckpt = list_checkpoints(tmp_path)[-1]
    state = json.loads((ckpt / "state.json").read_text())
    for section, name in (("train", "algorithm"), ("sample", "deterministic"), ("train", "ema_warmup")):
        del state["config"][section][name]  # as written before these fields existed
    (ckpt / "state.json").write_text(json.dumps(state))
    check_compatible(ckpt, config.to_dict())
    other = GRPOConfig()
    other.train.algorithm, other.sample.deterministic, other.train.ema_warmup = "nft", True, True
    with pytest.raises(CheckpointError, match=r"train.algorithm: checkpoint 'flow_grpo', now 'nft'[\s\S]*"
                                              r"sample.deterministic[\s\S]*train.ema_warmup"):
        check_compatible(ckpt, other.to_dict())


def test_ema_run_exports_the_average_and_resumes_it(tmp_path, models):
    flux, scorer = models
    overrides = {**SMALL, "train.ema_decay": "0.5", "train.steps": "2"}
    result = train(tiny_config(tmp_path / "a", flux, scorer, **overrides))
    checkpoint = tmp_path / "a" / "checkpoints" / "step_000002"
    shadow = load_file(str(checkpoint / "ema.safetensors"))
    live = load_file(str(checkpoint / "adapter.safetensors"))
    assert any(not torch.equal(shadow[k], live[k]) for k in live)  # the average is not the live LoRA
    exported = load_file(str(result.lora_path))
    in_checkpoint = load_file(str(checkpoint / "lora.safetensors"))
    assert all(torch.equal(exported[k], in_checkpoint[k]) for k in exported)
    # resume: 1 step, kill, then 1 more == 2 straight (the EMA travels in the checkpoint)
    train(tiny_config(tmp_path / "b", flux, scorer, **{**overrides, "train.steps": "1"}))
    train(tiny_config(tmp_path / "b", flux, scorer, **overrides), resume=True)
    resumed = load_file(str(tmp_path / "b" / "lora.safetensors"))
    assert all(torch.allclose(resumed[k], exported[k], atol=1e-6) for k in exported)


def test_time_budget_ends_the_run_as_a_last_step(tmp_path, models):
    flux, scorer = models
    result = train(tiny_config(tmp_path, flux, scorer, **{**SMALL, "train.steps": "50",
                                                          "train.time_budget_minutes": "1e-6"}))  # fmt: skip
    assert result.step == 1 and result.lora_path.is_file()
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1]
    assert (tmp_path / "checkpoints" / "step_000001").is_dir()


def test_oracle_options_are_validated():
    base = {"output.dir": "x"}
    with pytest.raises(ConfigError, match="output.oracle must be"):
        load_config(preset="tiny", overrides={**base, "output.oracle": "pixels"})
    with pytest.raises(ConfigError, match="the oracle rewards are"):
        load_config(preset="tiny", overrides={**base, "reward.path": "oracle:nope"})
    with pytest.raises(ConfigError, match="train.time_budget_minutes must be >= 0"):
        load_config(preset="tiny", overrides={**base, "train.time_budget_minutes": "-1"})
    config = load_config(preset="tiny", overrides={**base, "reward.path": "oracle:shapes", "output.oracle": "shapes"})
    from training.grpo.trainer import build_scorer

    assert type(build_scorer(config, torch.device("cpu"))).__name__ == "OracleReward"


def test_auto_sequence_length_fits_the_longest_prompt(tiny_flux_dir):
    from .conftest import make_policy

    policy = make_policy(tiny_flux_dir)
    long_prompt = " and ".join(["a red circle to the left of a blue square"] * 8)  # 88 T5 tokens
    assert policy.fit_sequence_length(["a red circle", long_prompt]) == 128
    assert policy.fit_sequence_length(["a red circle"]) == 64
    assert policy.encode_prompts(["a red circle"]).prompt_embeds.shape[1] == 64


def test_shipped_presets_validate():
    for preset in ("shapes", "flux_dev_spatial", "tiny"):
        config = load_config(preset=preset, overrides={"output.dir": "x"})
        assert config.train.beta >= 0
    shapes = load_config(preset="shapes", overrides={"output.dir": "x"})
    assert shapes.output.oracle == "shapes" and shapes.reward.path == "shapes-gen" and shapes.model.path == "shapes"
    assert load_config(preset="flux_dev_spatial", overrides={"output.dir": "x"}).trained_steps() == [0, 1, 2, 3, 4]
