"""The ComfyUI GRPO backend (nodes/comfy/policy.py) against the diffusers one (training/grpo/flux_policy.py):
the same shapes-generator weights, prompt embeddings, LoRA and noise give the same velocities, log-probs and LoRA
gradients within 1e-4; the export is the diffusers export. Skipped with the reason when ComfyUI does not import here.
"""

from __future__ import annotations

import json

import pytest
import torch

from .comfy_inprocess import import_comfy

REASON = import_comfy()
pytestmark = [pytest.mark.skipif(bool(REASON), reason=REASON or "ComfyUI importable"), pytest.mark.slow, pytest.mark.real_parts]
PROMPTS = ["a red circle to the left of a blue square", "a green triangle above a red circle"]
TOL = 1e-4


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    from nodes.comfy.policy import ComfyFlowPolicy
    from nodes.comfy.shapes_generator import load_shapes_generator
    from training.grpo.config import FLUX_LORA_TARGETS
    from training.grpo.flux_policy import FluxPolicy
    from training.grpo.shapes_generator import (
        SAMPLING_FILE,
        GeneratorShape,
        Sampling,
        build_pipeline,
        sampling_record,
    )

    folder = tmp_path_factory.mktemp("shapes_generator")
    build_pipeline(GeneratorShape(), seed=3).save_pretrained(str(folder))
    (folder / SAMPLING_FILE).write_text(json.dumps(sampling_record(Sampling(), GeneratorShape())))
    torch.manual_seed(0)
    diffusers_policy = FluxPolicy.from_folder(folder, "cpu", dtype="float32", lora_rank=4, lora_alpha=8.0,
                                              lora_targets=FLUX_LORA_TARGETS, gradient_checkpointing=False,
                                              max_sequence_length=Sampling().max_sequence_length)  # fmt: skip
    with torch.no_grad():  # a LoRA far from zero, so that the adapters' placement matters
        for p in diffusers_policy.named_trainable_parameters().values():
            p.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(p.numel()))
    model, clip, vae = load_shapes_generator(str(folder))
    comfy_policy = ComfyFlowPolicy(model, clip, vae, lora_rank=4, lora_alpha=8.0, lora_targets=FLUX_LORA_TARGETS)
    comfy_policy.load_lora_state_dict(diffusers_policy.lora_state_dict())
    diffusers_policy.folder = folder
    return diffusers_policy, comfy_policy


def lora_gradients(policy, run, sigmas, embeds):
    """The LoRA gradients of one SDE step's log-prob, by diffusers module name."""
    from training.grpo.sampling import step_log_prob

    for p in policy.named_trainable_parameters().values():
        p.grad = None
    with torch.enable_grad():
        log_prob, _, _ = step_log_prob(policy, run.latents[:, 1], run.latents[:, 2], sigmas[1].item(),
                                       sigmas[2].item(), 0.7, embeds, guidance=0.0)  # fmt: skip
        log_prob.sum().backward()
    # peft names "<module>.lora_A.default.weight", the ComfyUI backend "<module>.lora_A"
    grads = {n.replace(".default.weight", ""): p.grad for n, p in policy.named_trainable_parameters().items()}
    return log_prob.detach(), grads


def worst_relative_errors(reference: dict, other: dict) -> tuple[float, list]:
    """Errors relative to the largest gradient: some adapters (the last double block's text stream) get gradients
    of ~1e-7, where fp32 round-off in a different summation order is a large fraction of the value."""
    assert set(reference) == set(other)
    scale = max(g.abs().max().item() for g in reference.values())
    errors = {n: (reference[n] - other[n]).abs().max().item() / scale for n in reference}
    return scale, sorted(errors.items(), key=lambda kv: -kv[1])[:3]


def test_same_lora_export(backends):
    d, c = backends
    a, b = d.lora_state_dict(), c.lora_state_dict()
    assert set(a) == set(b) and len(a) > 20
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6


def test_text_through_clip_matches_the_pipeline(backends):
    d, c = backends
    e1, e2 = d.encode_prompts(PROMPTS), c.encode_prompts(PROMPTS)
    assert e1.prompt_embeds.shape == e2.prompt_embeds.shape
    assert (e1.prompt_embeds - e2.prompt_embeds).abs().max() < TOL
    assert (e1.pooled - e2.pooled).abs().max() < TOL


def test_schedule(backends):
    d, c = backends
    assert (d.sigmas(6, 64, 64) - c.sigmas(6, 64, 64)).abs().max() < TOL


def test_velocities_with_and_without_lora(backends):
    d, c = backends
    embeds = d.encode_prompts(PROMPTS)
    x = torch.randn(2, 8, 16, 16, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.8, 0.25])
    v1, v2 = d.velocity(x, sigma, embeds, 0.0), c.velocity(x, sigma, embeds, 0.0)
    assert (v1 - v2).abs().max() < TOL
    with d.reference(), c.reference():
        r1, r2 = d.velocity(x, sigma, embeds, 0.0), c.velocity(x, sigma, embeds, 0.0)
    assert (r1 - r2).abs().max() < TOL
    assert (r1 - v1).abs().max() > 100 * TOL  # the LoRA changes the model: the comparison above means something


def test_trajectories_log_probs_and_gradients(backends):
    from training.grpo.sampling import sample_generators, sample_trajectories

    d, c = backends
    embeds = d.encode_prompts(PROMPTS)
    sigmas = d.sigmas(6, 64, 64)
    runs = [sample_trajectories(p, embeds, sample_generators(0, 0, [0, 1]), sigmas, [0.7] * 6, guidance=0.0,
                                height=64, width=64) for p in (d, c)]  # fmt: skip
    assert (runs[0].latents - runs[1].latents).abs().max() < TOL
    assert (runs[0].log_probs - runs[1].log_probs).abs().max() < TOL
    (lp_d, grads_d), (lp_c, grads_c) = (lora_gradients(p, runs[0], sigmas, embeds) for p in (d, c))
    assert (lp_d - lp_c).abs().max() < TOL
    # the ComfyUI backend checkpoints every block (the default): this also holds the recomputation to the reference
    assert c.gradient_checkpointing
    scale, worst = worst_relative_errors(grads_d, grads_c)
    print("gradient scale", scale, "worst relative errors", worst)
    assert scale > 1e-4 and worst[0][1] < TOL, (scale, worst)


def test_a_model_loaded_under_inference_mode_trains_the_same(backends):
    """ComfyUI's executor runs nodes under torch.inference_mode(): the MODEL, CLIP and VAE the loader returns are
    inference tensors. The node trains under inference_mode(False); the gradients must be the reference's."""
    from nodes.comfy.policy import ComfyFlowPolicy
    from nodes.comfy.shapes_generator import load_shapes_generator
    from training.grpo.config import FLUX_LORA_TARGETS
    from training.grpo.sampling import sample_generators, sample_trajectories

    d, _ = backends
    embeds = d.encode_prompts(PROMPTS)
    sigmas = d.sigmas(6, 64, 64)
    run = sample_trajectories(d, embeds, sample_generators(0, 0, [0, 1]), sigmas, [0.7] * 6, guidance=0.0,
                              height=64, width=64)  # fmt: skip
    with torch.inference_mode():
        model, clip, vae = load_shapes_generator(str(d.folder))
        assert next(model.model.parameters()).is_inference()  # what the node is given
        with torch.inference_mode(False), torch.enable_grad():  # what the node does around training
            c = ComfyFlowPolicy(model, clip, vae, lora_rank=4, lora_alpha=8.0, lora_targets=FLUX_LORA_TARGETS)
            c.load_lora_state_dict(d.lora_state_dict())
            lp_c, grads_c = lora_gradients(c, run, sigmas, embeds)
    lp_d, grads_d = lora_gradients(d, run, sigmas, embeds)
    assert (lp_d - lp_c).abs().max() < TOL
    scale, worst = worst_relative_errors(grads_d, grads_c)
    assert scale > 1e-4 and worst[0][1] < TOL, (scale, worst)


def test_decode_matches(backends):
    d, c = backends
    z = torch.randn(2, 8, 16, 16, generator=torch.Generator().manual_seed(2))
    a, b = d.decode(z), c.decode(z)
    assert a.shape == b.shape == (2, 64, 64, 3)
    assert (a - b).abs().max() < TOL
