r"""python -m training.grpo.sample: images from a FLUX pipeline folder (and a LoRA) for a file of prompts.

    python -m training.grpo.sample --model shapes --lora shapes-grpo --prompts prompts.txt --out samples/
    python -m training.grpo.sample --model /models/FLUX.1-dev --lora runs/grpo/lora.safetensors --prompts p.txt \
        --out samples/ --num-steps 28 --height 1024 --width 1024

Writes DIR/samples.jsonl, one line per prompt: {"prompt", "image" (relative to DIR), "seed"}, and DIR/images/.
Sampling is the GRPO trainer's own (FluxPolicy + the SDE step at noise 0, i.e. FluxPipeline's Euler ODE); the
defaults are the model's own settings (a shipped generator's spatialscore_generator.json; FLUX.1-dev: 28 steps,
guidance 3.5). Each prompt's noise comes from (seed, its line number), so an image does not depend on its batch,
and it is the noise a GRPO run's evaluation gives the same prompt list (training.grpo.eval_step); the sampling is
training/grpo/sampling.py's.
Bad input gets one line and exit 2, and nothing is written: the folder appears whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ...common.atomic import atomic_dir
from ...common.cli_args import finite_float as _finite
from ...common.cli_args import positive_int as _positive
from ...common.os_errors import one_line_errors
from ..sampling import check_memory, generate, load_policy, settings_for


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m training.grpo.sample", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", required=True, help="a FluxPipeline folder, or 'shapes' (shipped)")
    parser.add_argument("--lora", help="a Flux LoRA .safetensors (diffusers keys), or 'shapes-grpo' / 'shapes-fast' "
                                         "(shipped)")
    parser.add_argument("--prompts", required=True, type=Path, help="a text file, one prompt a line")
    parser.add_argument("--out", required=True, type=Path, help="output folder (must not exist, or be empty)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-steps", type=_positive)
    parser.add_argument("--guidance", type=_finite)
    parser.add_argument("--height", type=_positive)
    parser.add_argument("--width", type=_positive)
    parser.add_argument("--batch-size", type=_positive, default=8)
    parser.add_argument("--device", default="auto", help="auto (GPU if any), cpu, cuda, cuda:N")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser.parse_args(argv)


def run(args) -> Path:
    from PIL import Image
    from tqdm import tqdm

    from ...common.device import check_device
    from ..prompts import load_prompts
    from ..shipped import resolve_generator, resolve_lora

    check_device(args.device)  # `--device cuda` on a machine without one: one line, before anything loads
    model = resolve_generator(args.model)
    lora = resolve_lora(args.lora) if args.lora else None
    prompts = load_prompts(args.prompts)
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise ValueError(f"--out {args.out}: exists and is not an empty folder; choose a new one")
    settings = settings_for(model, args)
    check_memory(model, settings, args.device, args.batch_size, len(prompts))
    policy = load_policy(model, lora, args.device, settings["max_sequence_length"])
    bar = tqdm(total=len(prompts), desc="sampling", dynamic_ncols=True)
    images = generate(policy, prompts, settings, args.seed, args.batch_size, lora is not None, bar.update)
    bar.close()
    if args.out.is_dir():
        args.out.rmdir()  # empty (checked above); atomic_dir puts the finished folder in its place
    with atomic_dir(args.out) as tmp:
        (tmp / "images").mkdir()
        lines = []
        for i, (prompt, image) in enumerate(zip(prompts, images, strict=True)):
            name = f"images/{i:05d}.png"
            Image.fromarray((image.numpy() * 255).round().astype("uint8")).save(tmp / name)
            lines.append(json.dumps({"prompt": prompt, "image": name, "seed": args.seed, "index": i}))
        (tmp / "samples.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        settings_record = {**settings, "model": str(model), "lora": str(lora) if lora else None, "seed": args.seed}
        (tmp / "settings.json").write_text(json.dumps(settings_record, indent=1) + "\n", encoding="utf-8")
    return args.out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ..prompts import PromptFileError
    from ..shipped import AssetError
    from ..validation import ConfigError

    out, failed = one_line_errors(lambda: run(args), args.debug, (AssetError, PromptFileError, ConfigError, ValueError))
    if failed:
        return failed
    print(f"samples: {out / 'samples.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
