"""A generator folder from a pretraining checkpoint (its EMA weights), to look at a run before it ends.

    python -m training.grpo.recipes.shapes_snapshot --out runs/shapes_gen --to runs/shapes_gen/generator_step500
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from ...common.checkpointing import list_checkpoints
from .shapes_generator import SAMPLING_FILE, GeneratorShape, Sampling, build_pipeline, sampling_record


def snapshot(out: Path, to: Path, raw: bool = False) -> Path:
    from diffusers import AutoencoderKL

    checkpoint = list_checkpoints(out / "pretrain")[-1]
    vae = AutoencoderKL.from_pretrained(out / "autoencoder_model", local_files_only=True).eval()
    pipeline = build_pipeline(GeneratorShape(), vae=vae)
    weights = load_file(str(checkpoint / ("weights.safetensors" if raw else "ema.safetensors")))
    with torch.no_grad():
        for prefix in ("transformer", "text_encoder", "text_encoder_2"):
            module = getattr(pipeline, prefix)
            for name, p in module.named_parameters():
                p.copy_(weights[f"{prefix}.{name}"])
    pipeline.save_pretrained(to, safe_serialization=True)
    (to / SAMPLING_FILE).write_text(json.dumps(sampling_record(Sampling(), GeneratorShape()), indent=1) + "\n")
    print(f"{checkpoint.name} -> {to}")
    return to


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.grpo.recipes.shapes_snapshot", description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--to", type=Path, required=True)
    parser.add_argument("--raw", action="store_true", help="the trained weights, not their EMA")
    args = parser.parse_args(argv)
    snapshot(args.out, args.to, args.raw)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
