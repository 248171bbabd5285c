"""A generator folder from a pretraining checkpoint (its EMA weights), to look at a run before it ends.

    python -m research.shapes_grpo.shapes_snapshot --out runs/shapes_gen --to runs/shapes_gen/generator_step500
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from training.common.checkpointing import list_checkpoints
from training.grpo.shapes_generator import (
    SAMPLING_FILE,
    GeneratorShape,
    Sampling,
    build_pipeline,
    sampling_record,
)


def snapshot(out: Path, to: Path, raw: bool = False, text_encoder: Path | None = None,
             vae_from: Path | None = None) -> Path:
    """`text_encoder`: the frozen pretrained T5 of a run that did not train it; `vae_from`: a generator folder whose
    autoencoder the run used (instead of out/autoencoder_model)."""
    from diffusers import AutoencoderKL

    checkpoint = list_checkpoints(out / "pretrain")[-1]
    vae_folder = vae_from / "vae" if vae_from else out / "autoencoder_model"
    vae = AutoencoderKL.from_pretrained(vae_folder, local_files_only=True).eval()
    pipeline = build_pipeline(GeneratorShape(), vae=vae)
    prefixes = ["transformer", "text_encoder", "text_encoder_2"]
    if text_encoder is not None:
        from transformers import T5EncoderModel

        pipeline.text_encoder_2 = T5EncoderModel.from_pretrained(text_encoder, local_files_only=True).eval()
        prefixes.remove("text_encoder_2")
    weights = load_file(str(checkpoint / ("weights.safetensors" if raw else "ema.safetensors")))
    with torch.no_grad():
        for prefix in prefixes:
            module = getattr(pipeline, prefix)
            for name, p in module.named_parameters():
                p.copy_(weights[f"{prefix}.{name}"])
    pipeline.save_pretrained(to, safe_serialization=True)
    (to / SAMPLING_FILE).write_text(json.dumps(sampling_record(Sampling(), GeneratorShape()), indent=1) + "\n")
    print(f"{checkpoint.name} -> {to}")
    return to


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.shapes_grpo.shapes_snapshot", description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--to", type=Path, required=True)
    parser.add_argument("--raw", action="store_true", help="the trained weights, not their EMA")
    parser.add_argument("--text-encoder", type=Path, help="the frozen pretrained T5 the run used")
    parser.add_argument("--vae-from", type=Path, help="the generator folder whose autoencoder the run used")
    args = parser.parse_args(argv)
    snapshot(args.out, args.to, args.raw, args.text_encoder, args.vae_from)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
