"""Spatial GRPO: seconds per GRPO step split by phase (sampling, reward, training), peak memory and MFU.

    python -m benchmarks.bench_grpo                    # the tiny preset on this CPU, 1 thread (CI-sized machines)
    python -m benchmarks.bench_grpo --shape mini       # the full-size code path at toy size (checks it on a CPU)
    python -m benchmarks.bench_grpo --shape flux-dev   # one GPU: FLUX.1-dev's shape with random bf16 weights,
                                                       # 512x512, G=24, 6 steps, top/bottom k=6, LoRA rank 32, and a
                                                       # SpatialScore-7B-shaped LoRA scorer on the same GPU

Every shape runs the real trainer (`training.grpo.trainer.train`) for --steps GRPO steps of one group each; the
first step is a warm-up and the median of the others is reported. The flux-dev shape builds the transformer (12B)
and the VAE from FLUX.1-dev's published configs; its text encoders are one-layer stand-ins with the real widths
(CLIP 768, T5 4096, 512 tokens), since prompt embeddings are computed once per prompt and are not part of a step.
Model FLOPs are counted with torch's FlopCounterMode on one sample (transformer forward, LoRA backward without the
checkpointing recompute, VAE decode, scorer) and multiplied out; MFU = model FLOPs / time / peak bf16 FLOP/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from training.common.atomic import write_text
from training.common.output_file import check_output_arg

PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}  # dense bf16 tensor-core FLOP/s (SXM)

FLUX_DEV = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
                axes_dims_rope=(16, 56, 56))  # fmt: skip
FLUX_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=16, norm_num_groups=32)
MINI = dict(patch_size=1, in_channels=16, num_layers=1, num_single_layers=2, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=64, pooled_projection_dim=32, guidance_embeds=True,
            axes_dims_rope=(4, 6, 6))  # fmt: skip
MINI_VAE = dict(block_out_channels=(8, 16, 16, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4)

RUN = {  # config overrides per shape (on top of the preset)
    "tiny": {},
    "mini": {"sample.group_size": 8, "sample.batch_size": 4, "train.top_k": 2, "sample.num_steps": 3,
             "sample.height": 64, "sample.width": 64, "train.batch_size": 4, "lora.rank": 4, "lora.alpha": 4.0,
             "model.max_sequence_length": 64},
    "flux-dev": {},  # the paper's preset as shipped
}  # fmt: skip


def build_flux_pipeline(shape: str, device, dtype):
    """A FluxPipeline with random weights: FLUX.1-dev's transformer and VAE shapes (or toy ones for "mini")."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from training.common.tiny_flux import build_tiny_clip_tokenizer, build_tiny_t5_tokenizer

    full = shape == "flux-dev"
    spec, vae_spec = (FLUX_DEV, FLUX_VAE) if full else (MINI, MINI_VAE)
    clip_tok, t5_tok = build_tiny_clip_tokenizer(), build_tiny_t5_tokenizer()
    clip_width, t5_width = spec["pooled_projection_dim"], spec["joint_attention_dim"]
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = FluxTransformer2DModel(**spec)
            for module in transformer.modules():  # GPT-style init keeps 57 random blocks finite in bf16
                if isinstance(module, torch.nn.Linear):
                    torch.nn.init.normal_(module.weight, std=0.02)
                    if module.bias is not None:
                        torch.nn.init.zeros_(module.bias)
            vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                                up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.3611, shift_factor=0.1159,
                                use_quant_conv=False, use_post_quant_conv=False, **vae_spec)  # fmt: skip
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(clip_tok), hidden_size=clip_width, intermediate_size=4 * clip_width, num_hidden_layers=1,
            num_attention_heads=max(1, clip_width // 64), max_position_embeddings=77, projection_dim=clip_width,
            bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id, pad_token_id=clip_tok.pad_token_id))
        text_encoder_2 = T5EncoderModel(T5Config(
            vocab_size=len(t5_tok), d_model=t5_width, d_ff=10240 if full else 64, d_kv=64 if full else 8,
            num_layers=1, num_heads=64 if full else 4, feed_forward_proj="gated-gelu", is_encoder_decoder=False,
            dropout_rate=0.0, pad_token_id=t5_tok.pad_token_id, eos_token_id=t5_tok.eos_token_id))  # fmt: skip
    finally:
        torch.set_default_dtype(previous)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True,
                                                base_shift=0.5, max_shift=1.15, base_image_seq_len=256,
                                                max_image_seq_len=4096)  # fmt: skip
    for module in (text_encoder, text_encoder_2, vae, transformer):
        module.eval()
    return FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=clip_tok,
                        text_encoder_2=text_encoder_2, tokenizer_2=t5_tok, transformer=transformer)


def build_scorer(shape: str, folder: Path, device, dtype):
    from training.reward import load_scorer

    if shape == "flux-dev":
        import torch

        from benchmarks.dryrun.score import build_scorer_model
        from training.reward.scorer import Scorer

        # SpatialScore-7B as load_scorer returns a LoRA scorer (LoRA merged, fp32 head), random bf16 weights built
        # on the GPU: the dry run's own model, and 15 GB never written to disk and read back
        with torch.device(device):
            model = build_scorer_model("7b", fake=False, px=512)
        return Scorer(model, batch_size=8)
    from training.reward.models.tiny import save_tiny_scorer

    scorer_dir = save_tiny_scorer(folder / "scorer", seed=0)
    return load_scorer(scorer_dir, device=device, dtype=dtype, batch_size=8)


def count_model_flops(policy, scorer, config) -> dict[str, float]:
    """FLOPs of one sample's transformer forward and LoRA backward, one image's decode and one image's score."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from training.grpo.sampling import sample_generators

    s = config.sample
    embeds = policy.encode_prompts(["a red cup on the left of a blue book"])
    x = policy.initial_noise(sample_generators(0, 0, [0]), s.height, s.width)
    sigma = torch.full((1,), 0.7)

    def flops(fn) -> float:
        counter = FlopCounterMode(display=False)
        with counter:
            fn()
        return float(counter.get_total_flops())

    with torch.no_grad():
        forward = flops(lambda: policy.velocity(x, sigma, embeds, s.guidance))
    checkpointing = policy.transformer.is_gradient_checkpointing
    forward_backward = flops(lambda: policy.velocity(x, sigma, embeds, s.guidance).float().square().mean().backward())
    policy.transformer.zero_grad(set_to_none=True)
    backward = forward_backward - forward * (2 if checkpointing else 1)  # without the recomputed forward
    with torch.no_grad():
        decode = flops(lambda: policy.decode(x))
    image = policy.decode(x)
    score = flops(lambda: scorer.score(image, ["a red cup on the left of a blue book"]))
    return {"forward": forward, "backward": backward, "decode": decode, "score": score}


def group_model_flops(unit: dict[str, float], config) -> float:
    s, t = config.sample, config.train
    group = s.group_size
    kept = 2 * t.top_k if 0 < t.top_k and 2 * t.top_k < group else group
    trained = len(config.trained_steps())
    sampling = group * s.num_steps * unit["forward"] + group * unit["decode"]
    # training: policy forward + LoRA backward, and the reference forward when the KL is on
    training = kept * trained * (unit["forward"] + unit["backward"] + (unit["forward"] if t.beta > 0 else 0.0))
    return sampling + group * unit["score"] + training


def run(shape: str, steps: int, out: Path, overrides: dict | None = None) -> dict:
    """`steps` GRPO steps of the shape's preset (with `overrides` on top); the summary of the steps after the first."""
    import torch

    from training.grpo.config import load_config
    from training.grpo.trainer import train

    cuda = torch.cuda.is_available()
    if shape == "flux-dev" and not cuda:
        raise SystemExit("--shape flux-dev needs a CUDA GPU (about 60 GB: 24 GB Flux + 17 GB scorer + training)")
    overrides = {"train.steps": steps, "prompts.num_eval": 0, "output.checkpoint_every": 0,
                 "output.dir": str(out / "run"), **RUN[shape], **(overrides or {})}  # fmt: skip
    if shape == "tiny":
        from training.grpo.tiny import materialize_tiny_models

        config = materialize_tiny_models(load_config(preset="tiny", overrides=overrides))
        policy = scorer = None
        unit = None
    else:
        from training.grpo.flux_policy import FluxPolicy

        device = torch.device("cuda" if cuda else "cpu")
        dtype = torch.bfloat16 if cuda else torch.float32
        overrides.update({"model.dtype": "bfloat16" if cuda else "float32",
                          "reward.dtype": "bfloat16" if cuda else "float32"})  # fmt: skip
        config = load_config(preset="flux_dev_spatial", overrides=overrides)
        pipeline = build_flux_pipeline(shape, device, dtype)
        lo, m = config.lora, config.model
        policy = FluxPolicy(pipeline, device, lora_rank=lo.rank, lora_alpha=lo.alpha, lora_targets=lo.targets,
                            gradient_checkpointing=m.gradient_checkpointing,
                            offload_text_encoders=m.offload_text_encoders, vae_batch_size=m.vae_batch_size,
                            max_sequence_length=m.max_sequence_length)  # fmt: skip
        scorer = build_scorer(shape, out, device, dtype)
        unit = count_model_flops(policy, scorer, config)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(config, policy=policy, scorer=scorer)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    timed = result.records[1:] if len(result.records) > 1 else result.records  # step 1 warms up
    phases = {k: statistics.median(r[k] for r in timed) for k in ("time_sample", "time_reward", "time_train")}
    step_seconds = sum(phases.values())
    summary = {
        "shape": shape, "device": torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} thread(s)",
        "group_size": config.sample.group_size, "prompts_per_step": config.prompts.per_step,
        "num_steps": config.sample.num_steps, "resolution": config.sample.height, "top_k": config.train.top_k,
        "lora_rank": config.lora.rank, "steps_timed": len(timed), "seconds_per_step": step_seconds,
        **{f"seconds_{k[5:]}": v for k, v in phases.items()},
        "run_wall_s": wall, "run_cpu_s": cpu,
    }  # fmt: skip
    if cuda:
        summary["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    if unit is not None:
        flops = group_model_flops(unit, config) * config.prompts.per_step
        summary["model_tflop_per_step"] = flops / 1e12
        summary["achieved_tflops"] = flops / step_seconds / 1e12
        name = torch.cuda.get_device_name() if cuda else ""
        peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
        if peak:
            summary["mfu"] = flops / step_seconds / peak
    return summary


def markdown(summary: dict) -> str:
    rows = [("device", summary["device"]),
            ("shape", f"{summary['shape']}: P={summary['prompts_per_step']} x G={summary['group_size']}, "
                      f"{summary['num_steps']} steps, "
                      f"{summary['resolution']}px, k={summary['top_k']}, LoRA rank {summary['lora_rank']}"),
            (f"seconds per GRPO step (median of {summary['steps_timed']} steps)", f"{summary['seconds_per_step']:.3f}"),
            ("  sampling (SDE trajectories + VAE decode)", f"{summary['seconds_sample']:.3f}"),
            ("  reward (SpatialScore)", f"{summary['seconds_reward']:.3f}"),
            ("  training (kept samples, policy + reference)", f"{summary['seconds_train']:.3f}")]  # fmt: skip
    if "peak_gib" in summary:
        rows.append(("peak GPU memory (GiB, allocated)", f"{summary['peak_gib']:.1f}"))
    if "model_tflop_per_step" in summary:
        rows.append(("model TFLOP per group", f"{summary['model_tflop_per_step']:.1f}"))
        rows.append(("achieved TFLOP/s", f"{summary['achieved_tflops']:.1f}"))
    if "mfu" in summary:
        rows.append(("MFU (bf16 dense peak)", f"{100 * summary['mfu']:.1f}%"))
    return "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(RUN), default="tiny")
    parser.add_argument("--steps", type=int, default=None, help="GRPO steps (the first one is a warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU shapes)")
    parser.add_argument("--json", help="also write the summary here")
    args = parser.parse_args(argv)
    check_output_arg(parser, args.json, "--json", example="bench_grpo.json")  # before minutes of training
    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    steps = args.steps or (4 if args.shape == "flux-dev" else 6)
    with tempfile.TemporaryDirectory() as tmp:
        summary = run(args.shape, steps, Path(tmp))
    print(json.dumps(summary, indent=2), file=sys.stderr)
    print(markdown(summary))
    if args.json:
        write_text(args.json, json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
