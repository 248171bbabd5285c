"""The checks every ComfyUI family backend passes against its diffusers reference (tests/nodes/test_comfy_sd3.py,
test_comfy_chroma.py): velocities with and without true CFG, CFG log-probs and LoRA gradients within `TOL`, and an
export that ComfyUI's LoRA loader applies to every adapted weight with the trained effect."""

from __future__ import annotations

import logging

import torch

TOL = 1e-4
H = W = 64
CFG = 4.0
PROMPTS = ["a red circle to the left of a blue square", "a cat under a big green tree"]


def randomize_lora(policy) -> None:
    """A LoRA far from zero (B starts at 0), so that the adapters' placement matters."""
    with torch.no_grad():
        for p in policy.named_trainable_parameters().values():
            p.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(p.numel()))


def check_velocities(d, c, channels: int = 16) -> None:
    x = torch.randn(3, channels, H // 8, W // 8, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.9, 0.5, 0.2])
    ed, ec = d.encode_prompts(PROMPTS).select([0, 1, 1]), c.encode_prompts(PROMPTS).select([0, 1, 1])
    torch.testing.assert_close(ec.prompt_embeds, ed.prompt_embeds)
    for guidance in (1.0, CFG):
        vd, vc = d.velocity(x, sigma, ed, guidance), c.velocity(x, sigma, ec, guidance)
        error = (vd - vc).abs().max().item()
        print(f"velocity, guidance {guidance}: max |comfy - diffusers| = {error:.2e} (scale {vd.abs().max():.2f})")
        assert error < TOL


def check_cfg_log_probs_and_gradients(d, c, modules: int) -> None:
    """`modules`: how many diffusers modules the LoRA adapts (each has lora_A and lora_B)."""
    from training.grpo.sampling import sample_generators, sample_trajectories, step_log_prob

    sigmas = c.sigmas(4, H, W)
    ed, ec = d.encode_prompts(PROMPTS).select([0, 1]), c.encode_prompts(PROMPTS).select([0, 1])
    run = sample_trajectories(d, ed, sample_generators(0, 0, range(2)), sigmas, [1.2] * 4, guidance=CFG,
                              height=H, width=W)  # fmt: skip
    results = []
    for policy, embeds in ((d, ed), (c, ec)):
        for p in policy.named_trainable_parameters().values():
            p.grad = None
        with torch.enable_grad():
            log_prob, _, _ = step_log_prob(policy, run.latents[:, 1], run.latents[:, 2], sigmas[1].item(),
                                           sigmas[2].item(), 1.2, embeds, guidance=CFG)  # fmt: skip
            log_prob.sum().backward()
        grads = {n.replace(".default.weight", ""): p.grad if p.grad is not None else torch.zeros_like(p)
                 for n, p in policy.named_trainable_parameters().items()}  # fmt: skip
        results.append((log_prob.detach(), grads))
    (lp_d, g_d), (lp_c, g_c) = results
    print(f"CFG log-prob: max |comfy - diffusers| = {(lp_d - lp_c).abs().max():.2e} (log-probs {lp_d.tolist()})")
    torch.testing.assert_close(lp_c, lp_d, rtol=0, atol=TOL)
    assert set(g_d) == set(g_c) and len(g_d) == 2 * modules
    scale = max(g.abs().max().item() for g in g_d.values())
    worst = max((g_d[n] - g_c[n]).abs().max().item() for n in g_d) / scale
    zero = sorted(n for n, g in g_d.items() if not g.abs().max())
    print(f"LoRA gradients: max |comfy - diffusers| / max |grad| = {worst:.2e} (max |grad| {scale:.2e}, "
          f"{len(g_d)} tensors, zero: {zero})")
    assert worst < TOL


def check_export_loads(d, c, model, caplog, weights: int) -> None:
    """The export is the diffusers export; comfy.sd.load_lora_for_models maps every key (no "lora key not loaded")
    onto the `weights` adapted ComfyUI weights, and the patched MODEL predicts what the trained policy predicts."""
    import comfy.model_management
    import comfy.sd

    state = c.lora_state_dict()
    assert set(state) == set(d.lora_state_dict())
    with caplog.at_level(logging.WARNING):
        patched = comfy.sd.load_lora_for_models(model, None, state, 1.0, 0.0)[0]
    assert "lora key not loaded" not in caplog.text
    assert len(patched.patches) == weights
    x = torch.randn(2, c.latent_channels, H // 8, W // 8, generator=torch.Generator().manual_seed(2))
    sigma = torch.tensor([0.8, 0.4])
    embeds = c.encode_prompts(PROMPTS)
    with torch.no_grad():
        trained = c.velocity(x, sigma, embeds, 1.0)
        with c.reference():
            base = c.velocity(x, sigma, embeds, 1.0)
        # ComfyUI loads the LoRA'd MODEL as a sampler would (the policy's clone, on the same weights, is unloaded and
        # its adapters wiped); the policy's forward then runs on those weights without reloading its own clone
        comfy.model_management.load_models_gpu([patched], force_full_load=True)
        c._ensure_loaded = lambda: None
        try:
            with c.reference():  # were the policy's adapters still on the weights, they would be off here
                loaded = c.velocity(x, sigma, embeds, 1.0)
        finally:
            del c._ensure_loaded
            comfy.model_management.unload_all_models()
    error = (loaded - trained).abs().max().item()
    print(f"LoRA through ComfyUI's loader: max |loaded - trained| = {error:.2e} (LoRA effect "
          f"{(trained - base).abs().max():.2e})")
    assert error < TOL and (trained - base).abs().max() > 100 * TOL


def check_trains_in_the_trainer(model, clip, family: str, tmp_path) -> None:
    """Two GRPO steps of the headless trainer with the node's config on the family's policy (sampling with true CFG,
    decoding, scoring, the clipped loss through ComfyUI's weight wrappers, checkpoints, export): finite, trained."""
    from nodes.comfy.families import comfy_policy, default_lora_targets
    from nodes.logic.grpo_node import WIDGETS, NodeSettings, build_config
    from training.grpo.trainer import train

    from .conftest import FakeScorer
    from .tiny_comfy_parts import LatentVae

    values = {w.name: w.default for w in WIDGETS}
    values.update(prompts="\n".join(PROMPTS), steps=2, group_size=4, top_k=1, learning_rate=1e-2, lora_rank=4,
                  lora_alpha=4.0, sampling_steps=3, width=W, height=H)  # fmt: skip
    config = build_config(NodeSettings(**values), tmp_path / "run")
    assert config.sample.guidance > 1  # true CFG on, as in the node
    policy = comfy_policy(model, clip, LatentVae(), lora_rank=4, lora_alpha=4.0, lora_targets=default_lora_targets(family))
    result = train(config, policy=policy, scorer=FakeScorer())
    state = policy.lora_state_dict()
    assert result.step == 2 and all(v.isfinite().all() for v in state.values())
    assert max(v.abs().max() for k, v in state.items() if ".lora_B." in k) > 0  # B starts at zero: it trained
    print(f"{family}: 2 GRPO steps, rewards {[round(r['reward_mean'], 3) for r in result.records if 'reward_mean' in r]}")
