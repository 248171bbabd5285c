"""The ComfyUI GRPO backend on a MODEL whose weights are stored in fp8 (UNETLoader's weight_dtype).

A tiny Flux (the shapes generator's architecture, random weights) loaded with weight_dtype fp8_e4m3fn / fp8_e5m2
under inference mode, as ComfyUI's executor gives it to a node: one GRPO step's loss (the trained timesteps of
sampled trajectories, clipped-ratio loss with advantages) gives the LoRA the gradients of the same weights
dequantized to fp32 within 1e-3 relative; the base weights stay fp8, frozen and byte-for-byte unchanged.
Skipped with the reason when ComfyUI does not import here (run with .comfyui/venv/bin/python).
"""

from __future__ import annotations

import json

import pytest
import torch

from .comfy_inprocess import import_comfy

REASON = import_comfy()
pytestmark = [pytest.mark.skipif(bool(REASON), reason=REASON or "ComfyUI importable"), pytest.mark.slow,
              pytest.mark.real_parts]  # fmt: skip
PROMPTS = ["a red circle to the left of a blue square", "a green triangle above a red circle"]
FP8 = {"fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from training.grpo.shapes_generator import (
        SAMPLING_FILE,
        GeneratorShape,
        Sampling,
        build_pipeline,
        sampling_record,
    )

    path = tmp_path_factory.mktemp("tiny_flux")
    build_pipeline(GeneratorShape(), seed=3).save_pretrained(str(path))
    (path / SAMPLING_FILE).write_text(json.dumps(sampling_record(Sampling(), GeneratorShape())))
    return path


def _policy(model, clip, vae, lora):
    from nodes.comfy.policy import ComfyFlowPolicy
    from training.grpo.config import FLUX_LORA_TARGETS

    policy = ComfyFlowPolicy(model, clip, vae, lora_rank=4, lora_alpha=8.0, lora_targets=FLUX_LORA_TARGETS)
    if lora is not None:
        policy.load_lora_state_dict(lora)
    return policy


def _grpo_step_gradients(policy, embeds, run, sigmas, advantages):
    """The LoRA gradients of one GRPO step's loss over the trained timesteps (as trainer.py accumulates it)."""
    from training.grpo.loss import grpo_step_loss
    from training.grpo.sampling import step_log_prob

    params = policy.named_trainable_parameters()
    for p in params.values():
        p.grad = None
    trained = range(len(sigmas) - 2)
    with torch.enable_grad():
        for j in trained:
            log_prob, mean, std = step_log_prob(policy, run.latents[:, j], run.latents[:, j + 1], sigmas[j].item(),
                                                sigmas[j + 1].item(), 0.7, embeds, guidance=0.0)  # fmt: skip
            terms = grpo_step_loss(log_prob, run.log_probs[:, j], advantages, 1e-4, 5.0, 0.0, mean, None, std)
            (terms.loss.sum() / (len(advantages) * len(trained))).backward()
    return {n: p.grad.clone() for n, p in params.items()}


@pytest.mark.parametrize("weight_dtype", ["fp8_e4m3fn", "fp8_e5m2"])
def test_lora_gradients_through_fp8_weights_equal_the_dequantized_ones(folder, weight_dtype):
    from nodes.comfy.shapes_generator import load_shapes_generator
    from training.grpo.sampling import sample_generators, sample_trajectories

    storage = FP8[weight_dtype]
    with torch.inference_mode():  # what ComfyUI's executor hands a node
        model8, clip, vae = load_shapes_generator(str(folder), weight_dtype=weight_dtype)
        model32, _, _ = load_shapes_generator(str(folder))
        original, _, _ = load_shapes_generator(str(folder))  # the fp32 weights before fp8 rounding
    weights8 = model8.model.diffusion_model.state_dict()
    stored = {k: v.clone() for k, v in weights8.items() if v.dtype == storage}
    assert len(stored) > 0.9 * len(weights8)  # every Linear and norm weight of the transformer (UNETLoader's way)
    assert model8.model.manual_cast_dtype == torch.float32
    with torch.inference_mode(False), torch.no_grad():
        for key, value in model32.model.diffusion_model.state_dict().items():  # the same weights, dequantized
            value.copy_(weights8[key].float())

    with torch.inference_mode(False), torch.enable_grad():
        lora = _policy(model32, clip, vae, None).lora_state_dict()
        generator = torch.Generator().manual_seed(5)
        lora = {k: v + 0.05 * torch.randn(v.shape, generator=generator) for k, v in lora.items()}
        fp8, fp32 = _policy(model8, clip, vae, lora), _policy(model32, clip, vae, lora)
        embeds = fp8.encode_prompts(PROMPTS)
        sigmas = fp8.sigmas(6, 64, 64)
        with torch.no_grad():
            run = sample_trajectories(fp8, embeds, sample_generators(0, 0, [0, 1]), sigmas, [0.7] * 6,
                                      guidance=0.0, height=64, width=64)  # fmt: skip
        advantages = torch.tensor([1.0, -1.0])
        got = _grpo_step_gradients(fp8, embeds, run, sigmas, advantages)
        want = _grpo_step_gradients(fp32, embeds, run, sigmas, advantages)
        unrounded = _grpo_step_gradients(_policy(original, clip, vae, lora), embeds, run, sigmas, advantages)

    assert set(got) == set(want) and len(want) > 20
    scale = max(g.abs().max().item() for g in want.values())
    worst = max((got[n] - want[n]).abs().max().item() for n in want) / scale
    total = torch.cat([(got[n] - want[n]).flatten() for n in want]).norm() / torch.cat(
        [g.flatten() for g in want.values()]).norm()  # fmt: skip
    print(f"{weight_dtype}: gradient scale {scale:.3g}, worst element {worst:.2e}, relative norm {total:.2e}")
    assert scale > 1e-5 and worst < 1e-3 and total < 1e-3, (scale, worst, total)
    # not vacuous: the fp8 rounding itself moves the gradients far more than the tolerance
    rounding = torch.cat([(unrounded[n] - want[n]).flatten() for n in want]).norm() / torch.cat(
        [g.flatten() for g in want.values()]).norm()  # fmt: skip
    print(f"{weight_dtype}: fp32 weights before rounding differ by {rounding:.2e}")
    assert rounding > 1e-2
    assert all(p.dtype == torch.float32 for p in fp8.named_trainable_parameters().values())

    after = fp8.base.diffusion_model.state_dict()  # the base weights: still fp8, frozen, not one byte changed
    for key, value in stored.items():
        assert after[key].dtype == storage, key
        assert torch.equal(after[key].view(torch.uint8), value.view(torch.uint8)), key
    assert not any(p.requires_grad for p in fp8.base.diffusion_model.parameters())


def test_the_loader_refuses_an_unknown_weight_dtype(folder):
    from nodes.comfy.shapes_generator import load_shapes_generator

    with pytest.raises(ValueError, match="weight_dtype"):
        load_shapes_generator(str(folder), weight_dtype="fp8_e4m3fn_fast")
