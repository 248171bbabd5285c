"""Spatial GRPO, top to bottom.

One GRPO step:
  1. prompts   P prompts, the same on every process (a function of seed and step), encoded once.
  2. sampling  P*G trajectories with the SDE, split over the processes; each sample's noise is its own (see
               sampling.py), so the split does not change any sample.
  3. reward    each process scores its images; rewards are gathered, then group advantages and the top-k/bottom-k
               filter are computed on the whole [P, G] table, identically everywhere.
  4. training  the kept samples' trajectories are gathered and dealt out evenly over the processes; each process
               accumulates the loss gradient of its share over the trained timesteps, normalised by the global
               count, and one all-reduce per optimizer step sums the gradients (see `_all_reduce_gradients`).
               The loss is train.algorithm's: Flow-GRPO's log-prob ratio of the SDE steps (loss.py), or DiffusionNFT's
               or AWM's flow-matching loss on the clean samples noised afresh (forward_rl.py).
  5. records   metrics.jsonl, the reward curve, sample grids of the eval prompts, atomic checkpoints.

A caller may follow a step from inside with `progress(step, phase, done, total)` (the ComfyUI node's progress
bar); it only reads counts, so a run with it is bit-for-bit the run without it.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from tqdm import tqdm

from ..common.atomic import write_json
from .advantages import group_advantages, group_stats
from .checkpoint import EMA_FILE, check_compatible, list_checkpoints, load_checkpoint, save_checkpoint
from .config import ConfigError, GRPOConfig, check_paths, check_world
from .ema import LoraEMA, maybe_swapped_in
from .eval_step import evaluate, save_before_after
from .forward_rl import OldPolicy, forward_noise, forward_step_loss
from .guards import apply_resumed_settings, check_finite_step, check_finite_weights, output_folder
from .lora import save_lora_file
from .loss import grpo_step_loss
from .policy import FlowPolicy
from .prompts import load_prompts, step_prompts
from .reports import MetricsLog, plot_reward_curve
from .sampling import sample_generators, sample_trajectories, step_log_prob

LORA_FILE = "lora.safetensors"
# the phases `progress` reports, each counted in its own unit: images sampled, images scored, kept samples trained,
# eval prompts sampled and scored
PHASES = ("sampling", "scoring", "training", "evaluation")


@dataclass
class RunResult:
    lora_path: Path | None  # written by the main process
    step: int  # GRPO steps completed
    records: list[dict]  # this run's metrics records (main process)


def build_policy(config: GRPOConfig, device: torch.device, prompts: list[str] = ()) -> FlowPolicy:
    """The FluxPolicy of `model.path` (a folder or a shipped generator's name) with a fresh LoRA; `prompts` size the
    T5 length when model.max_sequence_length is 0 (auto)."""
    from .flux_policy import FluxPolicy
    from .shapes_generator import read_sampling
    from .shipped import GENERATORS
    from .validation import pipeline_class

    m, lo = config.model, config.lora
    path = GENERATORS.get(m.path, m.path)
    declared = read_sampling(path)
    backend, extra = FluxPolicy, {}
    if pipeline_class(Path(path) / "model_index.json") == "QwenImagePipeline":  # validation.POLICY_PIPELINES
        from .qwen_image_policy import QwenImagePolicy

        backend, extra = QwenImagePolicy, {"negative_prompt": config.sample.negative_prompt}
    policy = backend.from_folder(
        path, device, dtype=m.dtype, lora_rank=lo.rank, lora_alpha=lo.alpha, lora_targets=lo.targets,
        seed=config.train.seed, gradient_checkpointing=m.gradient_checkpointing,
        offload_text_encoders=m.offload_text_encoders, vae_batch_size=m.vae_batch_size, weight_dtype=m.weight_dtype,
        offload_transformer=m.offload_transformer,
        max_sequence_length=m.max_sequence_length or (declared.max_sequence_length if declared else 512), **extra,
    )  # fmt: skip
    if not m.max_sequence_length and declared is None:
        policy.fit_sequence_length(prompts)
    if lo.init_from:
        policy.load_lora(lo.init_from)
    return policy


def build_scorer(config: GRPOConfig, device: torch.device):
    from training.reward import load_scorer

    from .flux_policy import DTYPES
    from .validation import ORACLE_REWARD

    r = config.reward
    if r.path.startswith(ORACLE_REWARD):
        from .oracle_judge import oracle_reward

        return oracle_reward(r.path[len(ORACLE_REWARD):])
    return load_scorer(r.path, device=device if r.device == "auto" else r.device, dtype=DTYPES[r.dtype],
                       batch_size=r.batch_size)  # fmt: skip


def _all_reduce_gradients(params: list[torch.nn.Parameter], accelerator) -> None:
    """Sum gradients over processes, in one flat buffer.

    Why not DistributedDataParallel: with the top-k filter and the reference passes, processes do not run the same
    number of forwards, and DDP's per-backward hooks would hang or sum partial gradients. Every process holds the
    same LoRA and optimizer state, so summing the (globally normalised) gradients once per optimizer step is
    exactly data-parallel SGD.
    """
    if accelerator.num_processes == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def _gather(accelerator, tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate equal-shaped tensors from all processes in rank order (identity on one process)."""
    if accelerator.num_processes == 1:
        return tensor
    return accelerator.gather(tensor.contiguous().to(accelerator.device)).cpu()


def _agree(accelerator, flag: bool) -> bool:
    """True on every process when it is True on the main one (clocks differ; decisions must not)."""
    if accelerator.num_processes == 1:
        return flag
    value = torch.tensor([float(flag) if accelerator.is_main_process else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(value, "sum").item() > 0)


def _sum(accelerator, values: list[float]) -> list[float]:
    if accelerator.num_processes == 1:
        return values
    return accelerator.reduce(torch.tensor(values, dtype=torch.float64, device=accelerator.device), "sum").tolist()


def _score(scorer, images: torch.Tensor, prompts: list[str], config: GRPOConfig,
           policy: FlowPolicy | None = None) -> torch.Tensor:
    # a policy that can leave the device does so while the scorer is on it (FluxPolicy with model.offload_transformer)
    away = getattr(policy, "offloaded", None)
    with away() if away is not None else contextlib.nullcontext():
        result = scorer.score(images, prompts)
        rewards = result.mean.float() - config.reward.std_penalty * result.std.float()
        if not config.reward.keep_loaded and hasattr(scorer, "release"):
            scorer.release()
    return rewards.cpu()


def train(config: GRPOConfig, *, resume: bool = False, policy: FlowPolicy | None = None, scorer=None,
          accelerator=None, callback: Callable[[dict], None] | None = None,
          progress: Callable[[int, str, int, int], None] | None = None) -> RunResult:
    """Run (or resume) Spatial GRPO. `policy` / `scorer` may be supplied (ComfyUI node, tests); else loaded.

    `callback(record)` is called after every step; an exception raised in it stops the run (e.g. a UI's cancel).
    `progress(step, phase, done, total)` is called on the main process at the start of each phase (done 0) and
    after each of its parts: `step` is the GRPO step in progress (1-based; 0 for the evaluation before the first),
    `phase` one of PHASES. An exception raised in it stops the run in the middle of that step, whose checkpoint is
    then not written: the last checkpoint is the previous step's.
    """
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True  # the fp32 LoRA matmuls on tensor cores; restored afterwards
    try:
        with torch.inference_mode(False), torch.enable_grad(), output_folder(config.output.dir, accelerator):
            return _train(config, resume, policy, scorer, accelerator, callback, progress)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32


def _no_progress(step: int, phase: str, done: int, total: int) -> None:
    pass


def _train(config, resume, policy, scorer, accelerator, callback, progress) -> RunResult:
    if accelerator is None:
        from accelerate import Accelerator

        # cpu=True also makes `torchrun --nproc_per_node N` on a machine without GPUs a gloo process group.
        accelerator = Accelerator(cpu=config.model.device == "cpu" or not torch.cuda.is_available())
    s, t = config.sample, config.train
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    check_world(config, world)
    check_paths(config, model=policy is None, reward=scorer is None)
    out = Path(config.output.dir)
    train_prompts = load_prompts(config.prompts.train_file)
    eval_prompts = load_prompts(config.prompts.eval_file) if config.prompts.eval_file else train_prompts
    eval_prompts = eval_prompts[: config.prompts.num_eval]  # 0: no evaluation
    bar = partial(tqdm, disable=not main, dynamic_ncols=True)
    report = progress if progress is not None and main else _no_progress
    checkpoints = list_checkpoints(out)
    if checkpoints and not resume:
        raise ConfigError(f"{out} already holds checkpoints ({checkpoints[-1].name}): pass --resume to continue that "
                          "run, or choose another output folder")  # fmt: skip
    if checkpoints:
        check_compatible(checkpoints[-1], config.to_dict())  # before any model loads

    # ---- models, optimizer, resume
    policy = policy if policy is not None else build_policy(config, accelerator.device, train_prompts + eval_prompts)
    if config.model.fsdp:  # the frozen base sharded over the processes; the LoRA stays replicated (sharding.py)
        from .sharding import shard_policy

        shard_policy(policy, accelerator.device, world)
    scorer = scorer if scorer is not None else build_scorer(config, accelerator.device)
    named_params = policy.named_trainable_parameters()
    params = list(named_params.values())
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, betas=(t.adam_beta1, t.adam_beta2),
                                  weight_decay=t.weight_decay, eps=t.adam_eps)  # fmt: skip
    ema = LoraEMA(named_params, t.ema_decay, warmup=t.ema_warmup) if t.ema_decay else None
    metrics = MetricsLog(out / "metrics.jsonl")
    start = 0
    if checkpoints:
        start = load_checkpoint(checkpoints[-1], named_params, optimizer, config.to_dict())
        if ema is not None and (checkpoints[-1] / EMA_FILE).is_file():
            ema.load(checkpoints[-1] / EMA_FILE)
        # the optimizer state brought back the old lr/betas: this run's settings apply, and the log says so
        changed = apply_resumed_settings(optimizer, check_compatible(checkpoints[-1], config.to_dict())["config"],
                                         config.to_dict())  # fmt: skip
        if main:
            metrics.truncate_after(start)
            print(f"resumed from {checkpoints[-1]} (step {start})")
            if changed:
                print("settings changed since that checkpoint, applied from now on:\n  " + "\n  ".join(changed))
    elif main:
        metrics.path.unlink(missing_ok=True)
    if main:
        write_json(out / "config.json", config.to_dict())
    accelerator.wait_for_everyone()

    sigmas = policy.sigmas(s.num_steps, s.height, s.width)
    trained = config.trained_steps()
    noise_levels = [s.noise_level if (j in trained or not s.ode_outside_window) else 0.0 for j in range(s.num_steps)]
    if s.deterministic:  # the ODE everywhere: train.algorithm nft / awm only (validation.py)
        noise_levels = [0.0] * s.num_steps
    group_total = config.prompts.per_step * s.group_size
    local = range(rank * group_total // world, (rank + 1) * group_total // world)  # contiguous: gather keeps order
    top_k = t.top_k if 0 < t.top_k and 2 * t.top_k < s.group_size else None
    score = partial(_score, scorer, config=config, policy=policy)
    records = []
    if main and start == 0 and eval_prompts:
        report(0, "evaluation", 0, len(eval_prompts))
        record = {"step": 0, **evaluate(policy, score, eval_prompts, config, 0, out)}
        report(0, "evaluation", len(eval_prompts), len(eval_prompts))
        metrics.append(record)
        records.append(record)

    run_clock, done = time.perf_counter(), start
    for step in bar(range(start, t.steps), desc="GRPO", initial=start, total=t.steps):
        timer, cpu_timer = time.perf_counter(), time.process_time()
        # ---- 1. prompts
        prompts = step_prompts(train_prompts, config.prompts.per_step, t.seed, step)
        embeds = policy.encode_prompts(prompts)

        # ---- 2. sampling (this process's share, micro-batches within one group)
        latents, log_probs, images = [], [], []
        report(step + 1, "sampling", 0, len(local))
        for first in bar(range(local.start, local.stop, s.batch_size), desc="sampling", leave=False):
            indices = list(range(first, first + s.batch_size))
            trajectories = sample_trajectories(
                policy, embeds.select([i // s.group_size for i in indices]),
                sample_generators(t.seed, step, indices), sigmas, noise_levels,
                guidance=s.guidance, height=s.height, width=s.width, sde_type=s.sde_type,
            )  # fmt: skip
            latents.append(trajectories.latents.cpu())
            log_probs.append(trajectories.log_probs.cpu())
            images.append(policy.decode(trajectories.latents[:, -1]))
            report(step + 1, "sampling", indices[-1] + 1 - local.start, len(local))
        images = torch.cat(images)
        check_finite_step(step + 1, "the sampled images", images)
        time_sample = time.perf_counter() - timer

        # ---- 3. rewards, gathered, then advantages on the whole [P, G] table
        timer = time.perf_counter()
        report(step + 1, "scoring", 0, len(images))
        local_rewards = _score(scorer, images, [prompts[i // s.group_size] for i in local], config, policy)
        report(step + 1, "scoring", len(images), len(images))
        rewards = _gather(accelerator, local_rewards).view(config.prompts.per_step, s.group_size)
        check_finite_step(step + 1, "the rewards", rewards)
        advantages, keep = group_advantages(rewards, top_k=top_k, std=t.adv_std)
        time_reward = time.perf_counter() - timer

        # ---- 4. training on the kept samples, dealt out evenly over the processes
        timer = time.perf_counter()
        all_latents = _gather(accelerator, torch.cat(latents))
        all_log_probs = _gather(accelerator, torch.cat(log_probs))
        kept = keep.flatten().nonzero().flatten()
        order = kept[torch.randperm(len(kept), generator=torch.Generator().manual_seed(t.seed * 7919 + step))]
        totals = [0.0] * 6  # loss, policy loss, kl, ratio, clipped, terms
        ratio_min, ratio_max, grad_norms = math.inf, -math.inf, []
        chunks = torch.tensor_split(order, t.updates_per_step)
        # DiffusionNFT's v_old is the LoRA that sampled: after this step's first update, a copy of it (forward_rl.py)
        old = OldPolicy(named_params) if t.algorithm == "nft" and len(chunks) > 1 else None
        kept_trained, kept_here = 0, sum(len(chunk[rank::world]) for chunk in chunks)
        report(step + 1, "training", 0, kept_here)
        for c, chunk in enumerate(chunks):
            weight = 1.0 / (len(chunk) * len(trained))
            mine = chunk[rank::world]
            for first in bar(range(0, len(mine), t.batch_size), desc="training", leave=False):
                batch = mine[first:first + t.batch_size]
                batch_embeds = embeds.select((batch // s.group_size).tolist())
                batch_latents = all_latents[batch].to(accelerator.device)
                if t.algorithm != "flow_grpo":  # nft / awm: each sample's fresh noise for each trained sigma
                    fresh = forward_noise(policy, t.seed, step, batch.tolist(), len(trained), s.height, s.width)
                for slot, j in enumerate(trained):
                    if t.algorithm != "flow_grpo":  # DiffusionNFT or AWM: the flow-matching loss on x0 (forward_rl.py)
                        terms = forward_step_loss(
                            policy, config, batch_latents[:, -1], fresh[:, slot], sigmas[j].item(), batch_embeds,
                            advantages.flatten()[batch], named_params, old if c > 0 else None,
                        )  # fmt: skip
                    else:  # Flow-GRPO: the PPO ratio of the SDE step's log-probability (loss.py)
                        log_prob, mean, std = step_log_prob(
                            policy, batch_latents[:, j], batch_latents[:, j + 1], sigmas[j].item(),
                            sigmas[j + 1].item(), noise_levels[j], batch_embeds, guidance=s.guidance,
                            sde_type=s.sde_type,
                        )  # fmt: skip
                        ref_mean = None
                        if t.beta > 0:
                            with torch.no_grad(), policy.reference():
                                _, ref_mean, _ = step_log_prob(
                                    policy, batch_latents[:, j], batch_latents[:, j + 1], sigmas[j].item(),
                                    sigmas[j + 1].item(), noise_levels[j], batch_embeds, guidance=s.guidance,
                                    sde_type=s.sde_type,
                                )  # fmt: skip
                        terms = grpo_step_loss(
                            log_prob, all_log_probs[batch, j].to(log_prob.device),
                            advantages.flatten()[batch].to(log_prob.device), t.clip_range, t.adv_clip, t.beta,
                            mean, ref_mean, std,
                        )  # fmt: skip
                    (terms.loss.sum() * weight).backward()
                    for k, v in enumerate((terms.loss.detach(), terms.policy_loss, terms.kl, terms.ratio,
                                           terms.clipped.float())):  # fmt: skip
                        totals[k] += v.sum().item()
                    totals[5] += len(batch)
                    ratio_min = min(ratio_min, terms.ratio.min().item())
                    ratio_max = max(ratio_max, terms.ratio.max().item())
                kept_trained += len(batch)
                report(step + 1, "training", kept_trained, kept_here)
            _all_reduce_gradients(params, accelerator)
            grad_norms.append(torch.nn.utils.clip_grad_norm_(params, t.max_grad_norm).item())
            check_finite_step(step + 1, "the gradient norm", grad_norms[-1])  # same on every process
            optimizer.step()
            check_finite_weights(step + 1, named_params)
            if ema is not None:
                ema.update(named_params, step * len(chunks) + c)
            optimizer.zero_grad(set_to_none=True)
        time_train = time.perf_counter() - timer
        cpu_seconds = time.process_time() - cpu_timer  # this process's CPU time in phases 1-4, all its threads

        # ---- 5. records, evaluation, checkpoints
        totals = _sum(accelerator, totals)
        check_finite_step(step + 1, "the loss", totals[0])
        extremes = _gather(accelerator, torch.tensor([[ratio_min, -ratio_max]], dtype=torch.float64)).amin(0)
        n_terms = max(totals[5], 1.0)
        record = {
            "step": step + 1,
            **group_stats(rewards, keep),
            "loss": totals[0] / n_terms, "policy_loss": totals[1] / n_terms, "kl": totals[2] / n_terms,
            "ratio_mean": totals[3] / n_terms, "ratio_min": extremes[0].item(), "ratio_max": -extremes[1].item(),
            "clip_frac": totals[4] / n_terms, "grad_norm": max(grad_norms), "lr": optimizer.param_groups[0]["lr"],
            "time_sample": time_sample, "time_reward": time_reward, "time_train": time_train, "cpu_seconds": cpu_seconds,
            "processes": world,
            "prompts": prompts, "rewards": rewards.tolist(), "advantages": advantages.tolist(),
        }  # fmt: skip
        if torch.cuda.is_available():
            record["gpu_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        done = step + 1
        # a time budget (equal-CPU-time ablations) ends the run after the step in which it ran out, as a last step
        out_of_time = bool(t.time_budget_minutes) and _agree(accelerator, time.perf_counter() - run_clock
                                                              >= 60 * t.time_budget_minutes)  # fmt: skip
        last = done == t.steps or out_of_time
        evaluate_now = last or (config.output.eval_every and done % config.output.eval_every == 0)
        checkpoint_now = last or (config.output.checkpoint_every and done % config.output.checkpoint_every == 0)
        if main and eval_prompts and evaluate_now:
            report(done, "evaluation", 0, len(eval_prompts))
            with maybe_swapped_in(ema, named_params):
                record.update(evaluate(policy, score, eval_prompts, config, done, out))
            report(done, "evaluation", len(eval_prompts), len(eval_prompts))
        if main:
            metrics.append(record)
            records.append(record)
            if evaluate_now or checkpoint_now:
                plot_reward_curve(metrics.records(), out / "reward_curve.png")
        if checkpoint_now:
            if main:
                with maybe_swapped_in(ema, named_params):
                    export = policy.lora_state_dict()
                save_checkpoint(out, done, named_params, optimizer, config.to_dict(), export,
                                keep=config.output.keep_checkpoints, ema=ema.shadow if ema else None)  # fmt: skip
            accelerator.wait_for_everyone()
        if callback is not None:
            callback(record)
        if out_of_time:
            if main:
                print(f"time budget of {t.time_budget_minutes} minutes used up after step {done}")
            break

    lora_path = None
    if main:
        with maybe_swapped_in(ema, named_params):  # the exported (and compared) LoRA is the EMA when enabled
            lora_path = save_lora_file(policy.lora_state_dict(), out / LORA_FILE,
                                       metadata={"steps": str(done), "config": json.dumps(config.to_dict())})
            if eval_prompts and start < t.steps:
                save_before_after(policy, eval_prompts, config, out / "before_after.png")
    accelerator.wait_for_everyone()
    return RunResult(lora_path=lora_path, step=done, records=records)
