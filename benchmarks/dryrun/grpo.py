"""Dry run of one Spatial GRPO step (one group) on FLUX.1-dev with the 7B SpatialScore, phase by phase.

It calls the trainer's own pieces, in the trainer's order (training/grpo/trainer.py):
  encode    FluxPolicy.encode_prompts (CLIP-L + T5-XXL visit the GPU when offloaded)
  sampling  sample_trajectories (the SDE with log-probs)
  decode    FluxPolicy.decode (VAE in slices of vae_batch_size)
  reward    Scorer.score on the decoded images (SpatialScore-7B, LoRA merged, reward.batch_size a batch)
  training  step_log_prob with the LoRA (with grad, gradient checkpointing), the reference forward (LoRA off) for
            the KL, grpo_step_loss, backward, clip_grad_norm_, AdamW step
What is run once and multiplied (the real step repeats it identically: same shapes, same code, same memory):
  sampling  one SDE step of one micro-batch of sample.batch_size trajectories; a group has
            num_steps x G / batch_size of them
  decode    one micro-batch; a group has G / sample.batch_size of them
  reward    one scorer batch of reward.batch_size images; a group has G / batch_size of them
  training  one micro-batch of train.batch_size kept samples at one trained timestep; a group has
            (2k / batch) x trained steps of them. The state it runs in is the steady one: AdamW moments exist (from
            the previous GRPO step) and gradients are being accumulated (from the previous micro-batch).
Estimated, not run: the decoded images are fake, so the scorer gets real random images of the same size, and the
rewards (hence the kept samples) are random. Neither changes shapes, FLOPs or memory.
"""

from __future__ import annotations

import torch

from .fake import build_flux_pipeline, building, fake_layerwise_casting, identity_to_is_free
from .measure import Meter
from .score import PROMPT, build_scorer_model, random_images


def load_grpo_config(train_batch: int | None = None, overrides: dict | None = None, preset: str = "flux_dev_spatial"):
    from training.grpo.config import load_config

    values = {"model.path": "@tiny", "reward.path": "@tiny", **(overrides or {})}
    if train_batch:
        values["train.batch_size"] = train_batch
    return load_config(preset=preset, overrides=values)


# T5 tokens a prompt when model.max_sequence_length is 0 (auto). The trainer then fits the length to its training
# prompts' longest in multiples of 64 (FluxPolicy.fit_sequence_length), counted by the real T5 tokenizer, which the
# dry run does not have: the preset's figure for the paper's ~77-token spatial prompts is 128. FluxPipeline pads
# every prompt to this length, so it is the transformer's text-token count in every phase.
AUTO_TEXT_TOKENS = 128


def build_policy(shape: str, fake: bool, config, dtype=torch.bfloat16, text_tokens: int = AUTO_TEXT_TOKENS):
    from training.grpo.flux_policy import FluxPolicy

    if "qwen-image" in shape:  # qwen_image.py: the same step with QwenImagePolicy
        from training.grpo.qwen_image_policy import QwenImagePolicy

        from .qwen_image import build_qwen_image_pipeline

        pipeline = build_qwen_image_pipeline(shape, fake, dtype, text_tokens=text_tokens)
        lo, m = config.lora, config.model
        with building(fake, dtype):
            return QwenImagePolicy(pipeline, "cpu", lora_rank=lo.rank, lora_alpha=lo.alpha, lora_targets=lo.targets,
                                   seed=config.train.seed, gradient_checkpointing=m.gradient_checkpointing,
                                   offload_text_encoders=m.offload_text_encoders, vae_batch_size=m.vae_batch_size,
                                   negative_prompt=config.sample.negative_prompt, max_sequence_length=text_tokens,
                                   weight_dtype=m.weight_dtype)

    pipeline = build_flux_pipeline(shape, fake, dtype)
    lo, m = config.lora, config.model
    with building(fake, dtype):  # LoRA built in the base's dtype: peft's cast to it is then the identity
        return FluxPolicy(pipeline, "cpu", lora_rank=lo.rank, lora_alpha=lo.alpha, lora_targets=lo.targets,
                          seed=config.train.seed, gradient_checkpointing=m.gradient_checkpointing,
                          offload_text_encoders=m.offload_text_encoders, vae_batch_size=m.vae_batch_size,
                          max_sequence_length=m.max_sequence_length or text_tokens, weight_dtype=m.weight_dtype)


def _steady_state(optimizer, params, accumulating: bool) -> None:
    """AdamW moments as after the previous GRPO step; gradients as after the previous micro-batch."""
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=not accumulating)


def run(policy_shape: str = "flux-dev", scorer_shape: str = "7b", fake: bool = True, config=None,
        px: int | None = None, text_tokens: int = AUTO_TEXT_TOKENS) -> tuple[Meter, dict]:
    """Measure one GRPO step; returns the meter and the weight bytes of each model (for residency variants)."""
    with identity_to_is_free(fake), fake_layerwise_casting(fake):  # model.weight_dtype fp8 on fake tensors
        return _run(policy_shape, scorer_shape, fake, config, px, text_tokens)


def _run(policy_shape, scorer_shape, fake, config, px, text_tokens):
    from training.grpo.advantages import group_advantages
    from training.grpo.loss import grpo_step_loss
    from training.grpo.sampling import sample_generators, sample_trajectories, step_log_prob
    from training.reward.scorer import Scorer

    config = config or load_grpo_config()
    s, t = config.sample, config.train
    if px:
        s.height = s.width = px
    policy = build_policy(policy_shape, fake, config, text_tokens=text_tokens)
    scorer_model = build_scorer_model(scorer_shape, fake, s.height)
    scorer = Scorer(scorer_model, batch_size=config.reward.batch_size)
    pipe = policy.pipeline
    models = {"transformer": policy.transformer, "vae": pipe.vae, "text encoders": _Pair(pipe.text_encoder,
                                                                                          getattr(pipe, "text_encoder_2", None)),
              "scorer": scorer_model}
    params = list(policy.named_trainable_parameters().values())
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2),
                                  weight_decay=t.weight_decay, eps=t.adam_eps)
    _steady_state(optimizer, params, accumulating=False)
    meter = Meter()
    # distinct prompts, as a step of a large prompt file has (the policy encodes each new prompt once); every
    # prompt is padded to the same T5 length, so their wording does not change the cost
    prompts = [f"{PROMPT}, picture {i}" for i in range(config.prompts.per_step)]
    group = config.prompts.per_step * s.group_size

    with meter.phase("encode", models, [optimizer],
                     note=f"{'Qwen2.5-VL' if 'qwen' in policy_shape else 'CLIP-L + T5-XXL'} of {len(prompts)} prompts, "
                          f"{policy.max_sequence_length} text tokens each"):
        embeds = policy.encode_prompts(prompts)

    sigmas = policy.sigmas(s.num_steps, s.height, s.width)
    trained = config.trained_steps()
    noise_levels = [s.noise_level if (j in trained or not s.ode_outside_window) else 0.0 for j in range(s.num_steps)]
    sample_batch = min(s.batch_size, group)
    # Each sampling step is the same transformer forward on the same shapes: one step is run (the trainer's
    # sample_trajectories with a one-step schedule) and its FLOPs multiplied by num_steps. The other steps' latents
    # (batch x 16 x 64 x 64 fp32, 2 MB a step at 512 px) are the only memory this leaves out.
    with meter.phase("sampling", models, [optimizer], repeat=group / sample_batch * s.num_steps,
                     note=f"{sample_batch} trajectories x 1 SDE step, x{s.num_steps} steps x{group // sample_batch}"):
        indices = list(range(sample_batch))
        trajectories = sample_trajectories(
            policy, embeds.select([i // s.group_size for i in indices]), sample_generators(t.seed, 0, indices),
            sigmas[:2], noise_levels[:1], guidance=s.guidance, height=s.height, width=s.width, sde_type=s.sde_type)
    with meter.phase("decode", models, [optimizer], repeat=group / sample_batch,
                     note=f"VAE decode of {sample_batch} latents in slices of {config.model.vae_batch_size}, "
                          f"x{group // sample_batch}"):
        policy.decode(trajectories.latents[:, -1])
    # the trajectories the training phase reads: the sampled step's latents stand in for every step (same shapes)
    latents = trajectories.latents[:, [0] + [1] * s.num_steps].cpu()
    log_probs = trajectories.log_probs[:, [0] * s.num_steps].cpu()
    del trajectories

    reward_batch = min(config.reward.batch_size, group)
    with meter.phase("reward", models, [optimizer], repeat=group / reward_batch,
                     note=f"{reward_batch} images a scorer batch, x{group // reward_batch}"):
        scorer.score(random_images(reward_batch, s.height), PROMPT)
    rewards = torch.randn(config.prompts.per_step, s.group_size, generator=torch.Generator().manual_seed(0))
    top_k = t.top_k if 0 < t.top_k and 2 * t.top_k < s.group_size else None
    advantages, keep = group_advantages(rewards, top_k=top_k, std=t.adv_std)

    kept = int(keep.sum())
    batch = min(t.batch_size, kept)
    micro_batches = -(-kept // batch)
    all_latents = latents[torch.arange(batch) % sample_batch]  # this micro-batch's trajectories (same shapes)
    old_log_probs = log_probs[torch.arange(batch) % sample_batch]
    batch_advantages = advantages.flatten()[keep.flatten()][:batch]
    _steady_state(optimizer, params, accumulating=micro_batches * len(trained) > 1)
    if t.algorithm != "flow_grpo":  # DiffusionNFT / AWM: the forward-process step instead (_forward_training)
        _forward_training(meter, models, optimizer, params, policy, config, embeds, sigmas, trained, all_latents,
                          batch_advantages, kept, micro_batches)
        weights = {name: sum(p.numel() * p.element_size() for p in m.parameters()) for name, m in models.items()}
        return meter, weights
    note = (f"{batch} kept samples x 1 timestep (policy + reference forward, backward) + AdamW, "
            f"x{micro_batches * len(trained)} ({kept} kept, {len(trained)} trained steps)")
    with meter.phase("training", models, [optimizer], repeat=micro_batches * len(trained), note=note):
        j = trained[0]
        batch_embeds = embeds.select([0] * batch)
        log_prob, mean, std = step_log_prob(
            policy, all_latents[:, j], all_latents[:, j + 1], sigmas[j].item(), sigmas[j + 1].item(),
            noise_levels[j], batch_embeds, guidance=s.guidance, sde_type=s.sde_type)
        ref_mean = None
        if t.beta > 0:
            with torch.no_grad(), policy.reference():
                _, ref_mean, _ = step_log_prob(
                    policy, all_latents[:, j], all_latents[:, j + 1], sigmas[j].item(), sigmas[j + 1].item(),
                    noise_levels[j], batch_embeds, guidance=s.guidance, sde_type=s.sde_type)
        terms = grpo_step_loss(log_prob, old_log_probs[:, j], batch_advantages, t.clip_range, t.adv_clip, t.beta,
                               mean, ref_mean, std)
        (terms.loss.sum() / (kept * len(trained))).backward()
        torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    weights = {name: sum(p.numel() * p.element_size() for p in m.parameters()) for name, m in models.items()}
    return meter, weights


def _forward_training(meter, models, optimizer, params, policy, config, embeds, sigmas, trained, all_latents,
                      advantages, kept, micro_batches) -> None:
    """The training phase of train.algorithm nft / awm (training/grpo/forward_rl.py), measured like Flow-GRPO's: one
    micro-batch at one trained sigma (the same trained steps as the preset), multiplied. Per micro-batch and sigma:
    the clean latents noised afresh, the policy forward with grad and its backward, the reference forward (no grad)
    when train.beta > 0; for nft after a step's first optimizer update (updates_per_step > 1) also the old policy's
    forward (no grad), measured as its own phase. No SDE step log-probability is recomputed (the sampling phase is
    the same as Flow-GRPO's: its log-probs cost one Gaussian density per step, nothing on the transformer)."""
    from training.grpo.forward_rl import OldPolicy, forward_step_loss

    t = config.train
    named = policy.named_trainable_parameters()
    batch = min(t.batch_size, kept)
    x0 = all_latents[:, -1]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    batch_embeds = embeds.select([0] * batch)
    j = trained[0]
    chunks = min(t.updates_per_step, micro_batches)
    # micro-batches in the first update (v_old is the live forward, detached) and in the later ones (nft: + v_old)
    first = -(-micro_batches // chunks) if t.algorithm == "nft" else micro_batches
    rest = micro_batches - first
    passes = f"policy{' + reference' if t.beta > 0 else ''} forward, backward"
    for name, count, old in (("training", first, None), ("training, v_old", rest, OldPolicy(named))):
        if count == 0:
            continue
        note = (f"{t.algorithm}: {batch} kept samples x 1 sigma ({passes}{' + old-policy forward' if old else ''}) "
                f"+ AdamW, x{count * len(trained)} ({kept} kept, {len(trained)} trained sigmas, no log-prob recompute)")
        with meter.phase(name, models, [optimizer], repeat=count * len(trained), note=note):
            terms = forward_step_loss(policy, config, x0, noise, sigmas[j].item(), batch_embeds, advantages, named,
                                      old)
            (terms.loss.sum() / (kept * len(trained))).backward()
            torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


class _Pair(torch.nn.Module):
    """CLIP-L and T5-XXL as one module for residency (they visit the GPU together)."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b
