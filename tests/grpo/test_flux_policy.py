"""The diffusers Flux policy on the tiny FLUX-architecture pipeline: ODE sampling equals FluxPipeline, recomputed
log-probs give ratio 1, the reference is the LoRA-free model, and the exported LoRA loads in diffusers."""

from __future__ import annotations

import re

import torch

from training.grpo.loss import grpo_step_loss, step_kl
from training.grpo.sampling import sample_generators, sample_trajectories, step_log_prob

from .conftest import make_policy, perturb_lora

PROMPTS = ["a red cup on the left of a blue book", "a cat under a table"]
H = W = 64


def _ode(policy, embeds, generators, steps=4, guidance=3.5):
    sigmas = policy.sigmas(steps, H, W)
    return sample_trajectories(policy, embeds, generators, sigmas, [0.0] * steps, guidance=guidance, height=H, width=W)


def test_ode_sampling_equals_flux_pipeline(tiny_policy):
    """noise_level 0 through the policy == FluxPipeline's own flow-match Euler loop from the same noise."""
    policy = tiny_policy
    perturb_lora(policy)  # the pipeline runs the same transformer, LoRA included
    embeds = policy.encode_prompts(PROMPTS)
    generators = sample_generators(0, 0, range(2))
    ours = _ode(policy, embeds, generators)
    noise = ours.latents[:, 0]
    pipe = policy.pipeline
    theirs = pipe(prompt_embeds=embeds.prompt_embeds, pooled_prompt_embeds=embeds.pooled,
                  latents=policy.pack(noise), num_inference_steps=4, guidance_scale=3.5, height=H, width=W,
                  output_type="latent", return_dict=False)[0]  # fmt: skip
    torch.testing.assert_close(ours.latents[:, -1], policy.unpack(theirs, *noise.shape[2:]), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(policy.sigmas(4, H, W), pipe.scheduler.sigmas.float().cpu())


def test_prompt_encoding_matches_the_pipeline_and_is_cached(tiny_policy):
    policy = tiny_policy
    embeds = policy.encode_prompts(PROMPTS)
    direct, pooled, _ = policy.pipeline.encode_prompt(prompt=PROMPTS, prompt_2=None, max_sequence_length=64)
    torch.testing.assert_close(embeds.prompt_embeds, direct)
    torch.testing.assert_close(embeds.pooled, pooled)
    assert set(policy._cache) == set(PROMPTS)
    assert next(policy.pipeline.text_encoder_2.parameters()).device.type == "cpu"  # offloaded between encodes
    again = policy.encode_prompts([PROMPTS[1], PROMPTS[1]])
    torch.testing.assert_close(again.prompt_embeds[0], embeds.prompt_embeds[1])


def test_recomputed_log_prob_gives_ratio_one(tiny_policy):
    """Sampling in batches of 4 and recomputing in other batches with the unchanged policy: ratio 1 within 1e-5."""
    policy = tiny_policy
    perturb_lora(policy, scale=0.2)
    steps, noise_level = 4, 0.9
    sigmas = policy.sigmas(steps, H, W)
    embeds = policy.encode_prompts(PROMPTS).select([0, 0, 1, 1])
    trajectories = sample_trajectories(policy, embeds, sample_generators(3, 1, range(4)), sigmas,
                                       [noise_level] * steps, guidance=3.5, height=H, width=W)  # fmt: skip
    for rows in ([0, 1], [2], [3, 1, 0]):
        for j in range(steps):
            latents = trajectories.latents[rows]
            with torch.no_grad():
                log_prob, _, _ = step_log_prob(policy, latents[:, j], latents[:, j + 1], sigmas[j].item(),
                                               sigmas[j + 1].item(), noise_level, embeds.select(rows), guidance=3.5)
            ratio = torch.exp(log_prob - trajectories.log_probs[rows, j])
            assert (ratio - 1).abs().max().item() < 1e-5, (rows, j, ratio)
    # and a changed policy does move the ratio (the check above could fail)
    perturb_lora(policy, scale=0.2, seed=9)
    with torch.no_grad():
        log_prob, _, _ = step_log_prob(policy, trajectories.latents[:, 1], trajectories.latents[:, 2],
                                       sigmas[1].item(), sigmas[2].item(), noise_level, embeds, guidance=3.5)
    assert (torch.exp(log_prob - trajectories.log_probs[:, 1]) - 1).abs().max().item() > 1e-3


def test_kl_is_zero_before_the_first_update_and_positive_after(tiny_policy):
    policy = tiny_policy  # freshly attached LoRA: B == 0
    embeds = policy.encode_prompts(PROMPTS)
    x = policy.initial_noise(sample_generators(0, 0, range(2)), H, W)
    nxt = torch.randn_like(x)

    def kl():
        with torch.no_grad():
            _, mean, std = step_log_prob(policy, x, nxt, 0.8, 0.6, 0.9, embeds, guidance=3.5)
            with policy.reference():
                _, ref_mean, _ = step_log_prob(policy, x, nxt, 0.8, 0.6, 0.9, embeds, guidance=3.5)
        return step_kl(mean, ref_mean, std)

    assert torch.all(kl() == 0)
    perturb_lora(policy, scale=0.05)
    assert torch.all(kl() > 0)  # the reference really switches the LoRA off


def test_gradient_flows_only_into_the_lora(tiny_flux_dir):
    policy = make_policy(tiny_flux_dir, gradient_checkpointing=True)
    embeds = policy.encode_prompts(PROMPTS)
    x = policy.initial_noise(sample_generators(0, 0, range(2)), H, W)
    log_prob, mean, std = step_log_prob(policy, x, torch.randn_like(x), 0.8, 0.6, 0.9, embeds, guidance=3.5)
    terms = grpo_step_loss(log_prob, log_prob.detach(), torch.tensor([1.0, -1.0]), 1e-4, 5.0, 0.0)
    terms.loss.sum().backward()
    params = policy.named_trainable_parameters()
    assert params and all(p.dtype == torch.float32 for p in params.values())
    assert all("lora_" in n for n in params)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in params.items() if "lora_B" in n)
    assert all(p.grad is None for p in policy.transformer.parameters() if not p.requires_grad)


def test_exported_lora_loads_in_diffusers_and_reproduces_the_policy(tiny_flux_dir, tmp_path):
    """One .safetensors in diffusers keys; FluxPipeline.load_lora_weights gives the trained velocity exactly."""
    from diffusers import FluxPipeline
    from safetensors.torch import load_file

    from training.grpo.lora import save_lora_file

    policy = make_policy(tiny_flux_dir, rank=4, alpha=16.0)  # scale 4: folding it into B matters
    perturb_lora(policy, scale=0.3)
    path = save_lora_file(policy.lora_state_dict(), tmp_path / "lora.safetensors")
    keys = list(load_file(str(path)))
    assert keys and all(re.fullmatch(r"transformer\..+\.lora_[AB]\.weight", k) for k in keys)
    assert not any("base_model" in k or ".default" in k for k in keys)
    assert len(keys) == 2 * len(policy.lora_modules)

    pipe = FluxPipeline.from_pretrained(str(tiny_flux_dir), torch_dtype=torch.float32, local_files_only=True)
    pipe.load_lora_weights(str(path))
    embeds = policy.encode_prompts(PROMPTS)
    x = policy.initial_noise(sample_generators(0, 0, range(2)), H, W)
    with torch.no_grad():
        trained = policy.velocity(x, torch.full((2,), 0.7), embeds, 3.5)
        with policy.reference():
            base = policy.velocity(x, torch.full((2,), 0.7), embeds, 3.5)
        policy_transformer = policy.transformer
        policy.transformer = pipe.transformer  # the same velocity code, on diffusers' loaded copy
        try:
            loaded = policy.velocity(x, torch.full((2,), 0.7), embeds, 3.5)
        finally:
            policy.transformer = policy_transformer
    assert (trained - base).abs().max() > 1e-3  # the LoRA matters
    torch.testing.assert_close(loaded, trained, rtol=1e-4, atol=1e-5)


# Module names (inside a block) that ComfyUI's comfy/utils.py flux_to_diffusers maps, i.e. the diffusers Flux LoRA
# keys comfy/lora.py loads as "transformer.<name>.lora_A.weight" (read from Comfy-Org/ComfyUI, v0.3.x).
COMFY_DOUBLE = {"attn.to_q", "attn.to_k", "attn.to_v", "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj",
                "attn.to_out.0", "attn.to_add_out", "norm1.linear", "norm1_context.linear", "ff.net.0.proj",
                "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2"}  # fmt: skip
COMFY_SINGLE = {"attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp", "norm.linear", "proj_out"}


def test_exported_keys_are_in_comfyui_flux_lora_format(tiny_policy):
    for key in tiny_policy.lora_state_dict():
        match = re.fullmatch(r"transformer\.(single_transformer_blocks|transformer_blocks)\.\d+\.(.+)\.lora_[AB]\.weight",
                             key)
        assert match, key
        allowed = COMFY_SINGLE if match.group(1) == "single_transformer_blocks" else COMFY_DOUBLE
        assert match.group(2) in allowed, key


def test_lora_file_round_trip_for_init_from(tiny_flux_dir, tmp_path):
    from training.grpo.lora import save_lora_file

    source = make_policy(tiny_flux_dir, rank=4, alpha=16.0)
    perturb_lora(source, scale=0.3)
    path = save_lora_file(source.lora_state_dict(), tmp_path / "lora.safetensors")
    target = make_policy(tiny_flux_dir, rank=4, alpha=16.0, seed=5)
    target.load_lora(path)
    for (name, a), b in zip(source.named_trainable_parameters().items(),
                            target.named_trainable_parameters().values(), strict=True):  # fmt: skip
        torch.testing.assert_close(a, b, msg=name)
