"""The diffusers Qwen-Image policy on the tiny QwenImagePipeline: the tiny_qwen_image preset trains and exports a LoRA
that `QwenImagePipeline.load_lora_weights` applies, and the policy's ODE sampling with true CFG equals the pipeline's;
CFG is in the recomputed log-probs; a prompt's conditioning does not depend on the prompts padded beside it."""

from __future__ import annotations

import pytest
import torch

from training.grpo.sampling import sample_generators, sample_trajectories, step_log_prob

from .conftest import perturb_lora

PROMPTS = ["a red circle left of a blue square", "a cat under a table near a big green tree"]
H = W = 64
CFG = 4.0


@pytest.fixture(scope="module")
def tiny_qwen_dir(tmp_path_factory):
    from training.common.tiny_qwen_image import save_tiny_qwen_image_pipeline

    return save_tiny_qwen_image_pipeline(tmp_path_factory.mktemp("tiny-qwen") / "qwen_image", seed=0)


def make_qwen_policy(folder, rank=4, alpha=8.0):
    from training.grpo.qwen_image_policy import QWEN_IMAGE_LORA_TARGETS, QwenImagePolicy

    return QwenImagePolicy.from_folder(folder, "cpu", dtype="float32", lora_rank=rank, lora_alpha=alpha,
                                       lora_targets=list(QWEN_IMAGE_LORA_TARGETS), gradient_checkpointing=False)


def _pipeline_latents(pipe, prompts, noise, policy, steps=4, cfg=CFG):
    return pipe(prompt=prompts, negative_prompt=" ", true_cfg_scale=cfg, latents=policy.pack(noise),
                num_inference_steps=steps, height=H, width=W, output_type="latent", return_dict=False)[0]  # fmt: skip


def test_preset_lora_loads_in_the_pipeline_and_sampling_matches(tmp_path):
    """python -m training.grpo --preset tiny_qwen_image --steps 4: its LoRA through load_lora_weights, sampled by
    QwenImagePipeline with CFG 4, equals the policy's own noise-0 sampling with that LoRA within 1e-4."""
    from diffusers import QwenImagePipeline

    from training.grpo.__main__ import main

    out = tmp_path / "run"
    assert main(["--preset", "tiny_qwen_image", "--steps", "4", "--out", str(out)]) == 0
    folder = out / "tiny_models" / "qwen_image"
    policy = make_qwen_policy(folder)
    policy.load_lora(out / "lora.safetensors")
    assert max(p.abs().max().item() for n, p in policy.named_trainable_parameters().items() if "lora_B" in n) > 0

    generators = sample_generators(0, 0, range(2))
    sigmas = policy.sigmas(4, H, W)
    ours = sample_trajectories(policy, policy.encode_prompts(PROMPTS), generators, sigmas, [0.0] * 4,
                               guidance=CFG, height=H, width=W)  # fmt: skip
    noise = ours.latents[:, 0]

    pipe = QwenImagePipeline.from_pretrained(str(folder), torch_dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    base = _pipeline_latents(pipe, PROMPTS, noise, policy)
    pipe.load_lora_weights(str(out / "lora.safetensors"))
    theirs = _pipeline_latents(pipe, PROMPTS, noise, policy)
    torch.testing.assert_close(policy.sigmas(4, H, W), pipe.scheduler.sigmas.float().cpu())
    final = policy.unpack(theirs, H // 8, W // 8)
    error = (ours.latents[:, -1] - final).abs().max().item()
    print(f"max |policy - QwenImagePipeline + load_lora_weights| at noise 0, CFG {CFG}: {error:.2e}")
    assert error < 1e-4
    assert (base - theirs).abs().max().item() > 100 * max(error, 1e-7)  # the loaded LoRA does change the samples


def test_cfg_is_in_the_recomputed_log_prob(tiny_qwen_dir):
    """The training forward is the sampling forward: ratio 1 with CFG, and a different log-prob without it."""
    policy = make_qwen_policy(tiny_qwen_dir)
    perturb_lora(policy, scale=0.2)
    sigmas = policy.sigmas(4, H, W)
    embeds = policy.encode_prompts(PROMPTS).select([0, 1, 1])
    trajectories = sample_trajectories(policy, embeds, sample_generators(3, 1, range(3)), sigmas, [1.2] * 4,
                                       guidance=CFG, height=H, width=W)  # fmt: skip
    for j in range(4):
        args = (policy, trajectories.latents[:, j], trajectories.latents[:, j + 1], sigmas[j].item(),
                sigmas[j + 1].item(), 1.2, embeds)  # fmt: skip
        log_prob, _, _ = step_log_prob(*args, guidance=CFG)
        torch.testing.assert_close(log_prob, trajectories.log_probs[:, j], rtol=0, atol=1e-5)
        without, _, _ = step_log_prob(*args, guidance=1.0)
        assert (without - log_prob).abs().max() > 1e-4  # 20x the tolerance above


def test_conditioning_does_not_depend_on_the_batch(tiny_qwen_dir):
    """A short prompt alone, or padded (masked) beside a longer one: the same velocity."""
    policy = make_qwen_policy(tiny_qwen_dir)
    perturb_lora(policy)
    x = torch.randn(1, 16, H // 8, W // 8, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.7])
    alone = policy.velocity(x, sigma, policy.encode_prompts(PROMPTS[:1]), CFG)
    both = policy.encode_prompts(PROMPTS)
    assert both.mask[0].sum() < both.mask.shape[1]  # the first prompt is padded here
    padded = policy.velocity(x.expand(2, -1, -1, -1), sigma.expand(2), both, CFG)[:1]
    torch.testing.assert_close(alone, padded, rtol=0, atol=1e-5)


def test_export_keys_are_the_diffusers_and_comfyui_layout(tiny_qwen_dir):
    policy = make_qwen_policy(tiny_qwen_dir)
    keys = set(policy.lora_state_dict())
    assert "transformer.transformer_blocks.0.attn.to_q.lora_A.weight" in keys
    assert "transformer.transformer_blocks.1.txt_mlp.net.2.lora_B.weight" in keys
    assert len(keys) == 2 * 2 * 12  # 2 blocks x 12 targets x (A, B)
