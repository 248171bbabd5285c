"""Scorer throughput: our batched scorer vs a naive baseline on the same model, in one run.

    python -m benchmarks.bench_scorer                 # small Qwen2.5-VL config, CPU (what CI-sized machines run)
    python -m benchmarks.bench_scorer --shape 7b      # full-size Qwen2.5-VL-7B shape, random weights, bf16, GPU

Baseline: one image at a time, fp32, eager attention, the generic processor call per image (chat template
rendered per image). Ours: `Scorer.score` (size-sorted batches, SDPA, bf16 on GPU, cached chat template).
Each variant runs in its own subprocess so that peak memory is its own; variants alternate over repeats and the
median is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from training.common.atomic import write_text
from training.common.output_file import check_output_arg

PROMPTS = {
    "short": "a red circle to the left of a blue square, and a green triangle above the blue square",
    # The paper's prompts are long and multi-relational; best-of-N and GRPO score many images per prompt.
    "long": "A red circle is to the left of a blue square, and a green triangle is above the blue square. "
            "A yellow circle is below the green triangle and to the right of the red circle. The blue square is "
            "next to the yellow circle, and the red circle is between the green triangle and the yellow square.",
}
PROMPT = PROMPTS["short"]

SHAPES = {
    # text hidden, layers, heads, kv heads, vision hidden, vision depth, image px
    "small": dict(text_hidden=256, text_layers=4, heads=4, kv_heads=2, vision_hidden=128, vision_depth=4),
}


def build_model_folder(shape: str, folder: Path, image_px: int) -> Path:
    """A LoRA scorer (rank 32, random head) on a random base of the given shape: what users score with."""
    import torch

    from training.reward import ScorerConfig, create_model, save_model
    from training.reward.models.tiny import save_tiny_qwen25vl

    base = folder / "base"
    if shape == "7b":
        build_7b_folder(base, image_px)
    else:
        save_tiny_qwen25vl(base, seed=0, min_pixels=56 * 56, max_pixels=image_px * image_px, **SHAPES[shape])
    config = ScorerConfig(weights="lora", min_pixels=56 * 56, max_pixels=image_px * image_px)
    dtype = torch.bfloat16 if shape == "7b" else torch.float32
    return save_model(create_model(base, config, dtype=dtype), folder / "scorer")


def build_7b_folder(folder: Path, image_px: int) -> Path:
    """Qwen2.5-VL-7B's published shape with random bf16 weights, written as a checkpoint folder."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from training.reward.models.processor import SpatialProcessor, make_image_processor
    from training.reward.models.tiny import CHAT_TEMPLATE, build_tiny_tokenizer

    if not torch.cuda.is_available():
        raise SystemExit("--shape 7b needs a CUDA GPU (about 17 GB for the bf16 weights)")
    tok = build_tiny_tokenizer()  # vocabulary content does not change the cost; the embedding size does
    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                         num_attention_heads=28, num_key_value_heads=4, rms_norm_eps=1e-6,
                         max_position_embeddings=32768, tie_word_embeddings=False,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}),
        vision_config=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, window_size=112, out_hidden_size=3584,
                           fullatt_block_indexes=[7, 15, 23, 31]),
        image_token_id=tok.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tok.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tok.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tok.convert_tokens_to_ids("<|vision_end|>"),
    )
    with torch.device("cuda"):
        model = Qwen2_5_VLForConditionalGeneration(cfg).to(torch.bfloat16)
    model.save_pretrained(folder)
    SpatialProcessor(make_image_processor(56 * 56, image_px * image_px), tok, chat_template=CHAT_TEMPLATE
                     ).save_pretrained(folder)
    del model
    return folder


def make_images(n: int, px: int):
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (px, px, 3), dtype=np.uint8)) for _ in range(n)]


def naive_loop(model, images, prompt: str):
    """The baseline: one image at a time, the generic processor call per image (chat template rendered per image)."""
    import torch

    out = []
    with torch.no_grad():
        for im in images:
            template = model.config.template
            messages = [{"role": "system", "content": template.system},
                        {"role": "user", "content": template.user_content(prompt)}]
            text = model.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            text += model.config.reward_token if model.mode == "reward" else ""
            batch = dict(model.processor(text=[text], images=[im], return_tensors="pt"))
            out.append(model(batch)[0])
    return torch.cat(out)


def measure(go) -> dict:
    """One warm-up call of `go` (kernels, allocator), then one timed call: its scores, wall and CPU seconds, and
    the peak memory of both (CUDA allocated, or the process's max RSS on a CPU). Also used by benchmarks.gpu_report."""
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    go()  # warm-up (kernels, allocator)
    if cuda:
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    scores = go()
    if cuda:
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"scores": scores, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "peak_gib": peak, "peak_kind": "cuda allocated" if cuda else "process max RSS"}


def run_variant(variant: str, folder: str, n: int, px: int, batch_size: int, prompt: str) -> dict:
    """Runs inside a subprocess: load, warm up, time one pass over n images."""
    import torch

    from training.reward.models.loading import load_model
    from training.reward.scorer import Scorer

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    images = make_images(n, px)
    if variant == "ours":
        model = load_model(folder, device=device, attn="sdpa")
        scorer = Scorer(model, batch_size=batch_size)

        def go():
            return scorer.score(images, prompt).mean
    else:
        model = load_model(folder, device=device, dtype=torch.float32, attn="eager")

        def go():
            return naive_loop(model, images, prompt)
    m = measure(go)
    seconds, scores = m["seconds"], m["scores"]
    return {"variant": variant, "images": n, "seconds": seconds, "images_per_s": n / seconds,
            "images_per_cpu_s": n / m["cpu_seconds"],
            "peak_gib": m["peak_gib"], "peak_kind": m["peak_kind"],
            "first_scores": [float(x) for x in scores[:3]], "device": device,
            "dtype": str(next(model.parameters()).dtype)}


def model_flops_per_image(folder: str, px: int) -> float:
    """2 x parameters x tokens for the decoder and the vision tower (attention terms ignored: short sequences)."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(Path(folder).parent / "base", local_files_only=True)
    t, v = cfg.text_config, cfg.vision_config
    side = round(px / 28) * 28
    patches = (side // 14) ** 2
    text_tokens = patches // 4 + 60
    d, f = t.hidden_size, t.intermediate_size
    kv = t.num_key_value_heads * d // t.num_attention_heads
    text_params = t.num_hidden_layers * (2 * d * d + 2 * d * kv + 3 * d * f)
    vd, vf = v.hidden_size, v.intermediate_size
    vision_params = v.depth * (4 * vd * vd + 3 * vd * vf) + 4 * vd * vd + vd * v.out_hidden_size
    return 2.0 * (text_params * text_tokens + vision_params * patches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=["small", "7b"], default="small")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--px", type=int, default=None, help="image side in pixels")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--prompt", choices=sorted(PROMPTS), default="short", help="prompt length")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--_variant", help=argparse.SUPPRESS)
    ap.add_argument("--_folder", help=argparse.SUPPRESS)
    args = ap.parse_args()
    check_output_arg(ap, args.json, "--json", example="bench_scorer.json")  # before minutes of scoring
    px = args.px or (512 if args.shape == "7b" else 128)
    n = args.images or (64 if args.shape == "7b" else 32)
    bs = args.batch_size or (16 if args.shape == "7b" else 16)
    if args._variant:
        print(json.dumps(run_variant(args._variant, args._folder, n, px, bs, PROMPTS[args.prompt])))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = str(build_model_folder(args.shape, Path(tmp), px))
        runs = {"baseline": [], "ours": []}
        for _ in range(args.repeats):
            for variant in ("baseline", "ours"):
                cmd = [sys.executable, "-m", "benchmarks.bench_scorer", "--shape", args.shape, "--images", str(n),
                       "--px", str(px), "--batch-size", str(bs), "--prompt", args.prompt, "--_variant", variant, "--_folder", folder]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ)
                runs[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
        flops = model_flops_per_image(folder, px)
    for variant, rs in runs.items():
        print(variant, "images/s per repeat:", " ".join(f"{r['images_per_s']:.1f}" for r in rs))
    summary = {}
    for variant, rs in runs.items():
        ips = statistics.median(r["images_per_s"] for r in rs)
        summary[variant] = {"images_per_s": ips,
                            "images_per_cpu_s": statistics.median(r["images_per_cpu_s"] for r in rs), "peak_gib": max(r["peak_gib"] for r in rs),
                            "peak_kind": rs[0]["peak_kind"], "device": rs[0]["device"], "dtype": rs[0]["dtype"],
                            "tflops": ips * flops / 1e12}
    ratio = summary["ours"]["images_per_s"] / summary["baseline"]["images_per_s"]
    # CPU seconds are what a busy shared machine perturbs least; with one thread they equal wall time when idle.
    cpu_ratio = summary["ours"]["images_per_cpu_s"] / summary["baseline"]["images_per_cpu_s"]
    drift = max(abs(a - b) for a, b in zip(runs["ours"][0]["first_scores"], runs["baseline"][0]["first_scores"],
                                           strict=True))
    result = {"shape": args.shape, "prompt": args.prompt, "images": n, "px": px, "batch_size": bs, "repeats": args.repeats,
              "threads": os.environ.get("OMP_NUM_THREADS", "default"), "model_gflops_per_image": flops / 1e9,
              "variants": summary, "speedup": ratio, "speedup_cpu_time": cpu_ratio, "max_score_difference": drift}
    print(f"shape={args.shape} prompt={args.prompt} images={n} px={px} batch={bs} threads={result['threads']}")
    print(f"{'variant':<9} {'images/s':>9} {'img/CPU-s':>9} {'peak GiB':>9} {'TFLOP/s':>8}  device/dtype")
    for variant, s in summary.items():
        print(f"{variant:<9} {s['images_per_s']:>9.2f} {s['images_per_cpu_s']:>9.2f} {s['peak_gib']:>9.2f} "
              f"{s['tflops']:>8.3f}  "
              f"{s['device']}/{s['dtype']} ({s['peak_kind']})")
    print(f"speedup ours/baseline: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU time   max |score difference| on shared images: {drift:.2e}")
    if args.json:
        write_text(args.json, json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
