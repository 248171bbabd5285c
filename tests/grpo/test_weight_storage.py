"""fp8 storage of the frozen base weights in the headless backend (training/grpo/weight_storage.py).

One GRPO log-prob step on the tiny Flux with its block weights stored in fp8 gives the LoRA the gradients of the
same weights dequantized to fp32 (with and without gradient checkpointing); the fp8 bytes never change; the LoRA
stays fp32; "default" stores nothing.
"""

from __future__ import annotations

import pytest
import torch

from .conftest import make_policy, perturb_lora


def _step_gradients(policy, seed=0):
    from training.grpo.sampling import sample_generators, sample_trajectories, step_log_prob

    prompts = ["a red circle left of a blue square", "a green triangle above a red circle"]
    embeds = policy.encode_prompts(prompts)
    sigmas = policy.sigmas(3, 32, 32)
    with torch.no_grad():
        run = sample_trajectories(policy, embeds, sample_generators(seed, 0, [0, 1]), sigmas, [0.7] * 3,
                                  guidance=3.5, height=32, width=32)  # fmt: skip
    for p in policy.named_trainable_parameters().values():
        p.grad = None
    with torch.enable_grad():
        log_prob, _, _ = step_log_prob(policy, run.latents[:, 1], run.latents[:, 2], sigmas[1].item(),
                                       sigmas[2].item(), 0.7, embeds, guidance=3.5)  # fmt: skip
        log_prob.sum().backward()
    return {n: p.grad.clone() for n, p in policy.named_trainable_parameters().items()}


def _dequantized_copy(fp8_policy, reference_policy):
    """Copy the fp8 policy's stored weights, dequantized to fp32, into the reference policy's base layers."""
    ref = dict(reference_policy.transformer.named_parameters())
    with torch.no_grad():
        for name, p in fp8_policy.transformer.named_parameters():
            if p.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
                ref[name].copy_(p.float())


@pytest.mark.parametrize("weight_dtype,checkpointing", [("fp8_e4m3fn", False), ("fp8_e4m3fn", True),
                                                         ("fp8_e5m2", True)])  # fmt: skip
def test_fp8_storage_gives_the_dequantized_gradients(tiny_flux_dir, weight_dtype, checkpointing):
    from training.grpo.config import FLUX_LORA_TARGETS
    from training.grpo.flux_policy import FluxPolicy
    from training.grpo.weight_storage import WEIGHT_DTYPES, parameter_bytes

    storage = WEIGHT_DTYPES[weight_dtype]
    fp8 = FluxPolicy.from_folder(tiny_flux_dir, "cpu", dtype="float32", lora_rank=4, lora_alpha=8.0,
                                 lora_targets=list(FLUX_LORA_TARGETS), gradient_checkpointing=checkpointing,
                                 max_sequence_length=64, weight_dtype=weight_dtype)  # fmt: skip
    reference = make_policy(tiny_flux_dir, gradient_checkpointing=checkpointing)
    perturb_lora(fp8, scale=0.05)
    perturb_lora(reference, scale=0.05)
    _dequantized_copy(fp8, reference)
    stored = {n: p.detach().clone() for n, p in fp8.transformer.named_parameters() if p.dtype == storage}
    # every Linear weight inside the blocks is stored in fp8, the modulation projections included
    block_linears = [n for n, m in fp8.transformer.named_modules() if isinstance(m, torch.nn.Linear)
                     and "transformer_blocks." in n and "lora_" not in n]  # fmt: skip
    assert block_linears and all(f"{n}.weight" in stored for n in block_linears)
    assert fp8.fp8_parameters == sum(p.numel() for p in stored.values())
    assert parameter_bytes(fp8.transformer)[str(storage).removeprefix("torch.")] == fp8.fp8_parameters

    got, want = _step_gradients(fp8), _step_gradients(reference)
    assert set(got) == set(want) and len(got) > 20
    scale = max(g.abs().max().item() for g in want.values())
    worst = max((got[n] - want[n]).abs().max().item() for n in want) / scale
    assert worst < 1e-3, worst
    assert all(p.dtype == torch.float32 for p in fp8.named_trainable_parameters().values())
    for name, p in fp8.transformer.named_parameters():  # still fp8, byte for byte, and frozen
        if name in stored:
            assert p.dtype == storage and not p.requires_grad and p.grad is None
            assert torch.equal(p.view(torch.uint8), stored[name].view(torch.uint8)), name


def test_default_stores_nothing(tiny_flux_dir):
    policy = make_policy(tiny_flux_dir)
    assert policy.fp8_parameters == 0
    assert {p.dtype for p in policy.transformer.parameters()} == {torch.float32}


def test_unknown_weight_dtype_is_a_config_error(tmp_path):
    from training.grpo.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="model.weight_dtype"):
        load_config(preset="tiny", overrides={"model.weight_dtype": "fp8", "output.dir": str(tmp_path)})
