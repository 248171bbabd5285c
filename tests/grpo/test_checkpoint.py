"""Checkpoints: exact round trip of LoRA + optimizer + RNG, atomic folders, pruning, refusal of a different setup."""

from __future__ import annotations

import json

import pytest
import torch

from training.grpo.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from training.grpo.config import GRPOConfig


def _params(seed):
    generator = torch.Generator().manual_seed(seed)
    return {"a.lora_A.default.weight": torch.nn.Parameter(torch.randn(4, 8, generator=generator)),
            "a.lora_B.default.weight": torch.nn.Parameter(torch.randn(8, 4, generator=generator))}  # fmt: skip


def _trained_optimizer(params):
    optimizer = torch.optim.AdamW(params.values(), lr=1e-2, weight_decay=1e-4)
    for _ in range(3):
        loss = sum((p**2).sum() for p in params.values())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return optimizer


def test_round_trip_restores_weights_optimizer_and_rng(tmp_path):
    config = GRPOConfig().to_dict()
    params = _params(0)
    optimizer = _trained_optimizer(params)
    torch.manual_seed(123)
    save_checkpoint(tmp_path, 3, params, optimizer, config)
    expected_next = torch.rand(3)

    restored = _params(1)
    restored_optimizer = torch.optim.AdamW(restored.values(), lr=1e-2, weight_decay=1e-4)
    torch.manual_seed(999)
    step = load_checkpoint(list_checkpoints(tmp_path)[-1], restored, restored_optimizer, config)
    assert step == 3
    torch.testing.assert_close(torch.rand(3), expected_next)  # RNG restored
    for name in params:
        torch.testing.assert_close(restored[name], params[name], rtol=0, atol=0)
    # the next optimizer step is the same as the uninterrupted one's
    for p, o in ((params, optimizer), (restored, restored_optimizer)):
        sum((x**3).sum() for x in p.values()).backward()
        o.step()
    for name in params:
        torch.testing.assert_close(restored[name], params[name], rtol=0, atol=0)


def test_half_written_checkpoints_are_ignored_and_old_ones_pruned(tmp_path):
    config = GRPOConfig().to_dict()
    params = _params(0)
    optimizer = _trained_optimizer(params)
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, params, optimizer, config, keep=2)
    (tmp_path / "checkpoints" / ".step_000004.abc.tmp").mkdir()  # what a kill during a save leaves behind
    (tmp_path / "checkpoints" / "step_000005").mkdir()  # no state.json: not complete
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000002", "step_000003"]
    saved = json.loads((tmp_path / "checkpoints" / "step_000003" / "state.json").read_text())
    assert saved["step"] == 3 and saved["config"]["sample"]["group_size"] == 24


def test_resuming_with_a_different_setup_is_refused(tmp_path):
    config = GRPOConfig()
    params = _params(0)
    save_checkpoint(tmp_path, 1, params, _trained_optimizer(params), config.to_dict())
    other = GRPOConfig()
    other.lora.rank = 8
    other.sample.group_size = 12
    with pytest.raises(CheckpointError, match=r"lora.rank: checkpoint 32, now 8[\s\S]*sample.group_size"):
        load_checkpoint(list_checkpoints(tmp_path)[-1], params, torch.optim.AdamW(params.values()), other.to_dict())
    wrong = {"other.weight": torch.nn.Parameter(torch.zeros(2))}
    with pytest.raises(CheckpointError, match="adapter weights do not match"):
        load_checkpoint(list_checkpoints(tmp_path)[-1], wrong, torch.optim.AdamW(wrong.values()), config.to_dict())
