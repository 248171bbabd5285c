"""Reproduce the shipped shapes generator (`shapes`) and its GRPO LoRA (`shapes-grpo`) from an empty folder.

    python -m training.grpo.recipes.shapes --out runs/shapes_gen                 # every stage
    python -m training.grpo.recipes.shapes --out runs/shapes_gen --ship          # and copy both into the package

Stages (each skipped when its output exists; a killed stage continues from its last checkpoint):
  1. prompts      heldout.txt (400 held-out prompts: 200 with 2 objects, 200 with 3) and grpo_prompts.txt (2,000
                  training prompts), their texts disjoint (shapes_data.py)
  2. autoencoder  AutoencoderKL on rendered scenes (shapes_autoencoder.py) -> autoencoder_model/
  3. text encoder  (the default, --text-encoder pretrained) a T5 pretrained alone on the prompt language
                  (shapes_text_pretrain.py -> text_encoder_2/: masked words, word positions and each object word's
                  object: its roles, colour and shape as the sentence states them), frozen during flow matching, as
                  FLUX.1's is. With --text-encoder joint (the first generator, shipped 2026-12-01 in commit
                  7a30f97) the T5 trains with the transformer instead and comes out a bag of words
                  (research/shapes_grpo/journal.md)
  4. generator    flow matching of the transformer (and CLIP; and the T5 with joint) (shapes_pretrain.py) ->
                  generator/, a FluxPipeline folder: FROZEN_T5 or JOINT below
  5. grpo         python -m training.grpo --preset shapes against the shipped `shapes-gen` scorer (the preset's reward,
                  made by training/reward/recipes/shapes.py) -> grpo/lora.safetensors
  6. evaluate     the pixel oracle on the held-out prompts, before and after GRPO -> evaluation.json
--ship copies generator/ to training/grpo/assets/shapes/ and the LoRA to training/grpo/assets/shapes-grpo/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ...common.atomic import atomic_dir, write_json
from .shapes_data import GRPO_PROMPT_SEED, distinct_scenes, heldout_prompts, write_prompt_file

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def _run(args: list[str]) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run(args, check=True)


def write_prompts(out: Path) -> tuple[Path, Path]:
    from ...dataset.prompts import plain_prompt

    heldout = heldout_prompts()
    held = write_prompt_file(out / "heldout.txt", heldout, "held-out shapes prompts: never in pretraining or GRPO")
    train = [plain_prompt(s) for s in distinct_scenes(2000, GRPO_PROMPT_SEED, exclude=heldout)]
    grpo = write_prompt_file(out / "grpo_prompts.txt", train, "GRPO training prompts (none is held out)")
    return held, grpo


def autoencoder(out: Path) -> Path:
    folder = out / "autoencoder_model"
    if not (folder / "config.json").is_file():
        import torch

        from ..shapes_generator import GeneratorShape
        from .shapes_autoencoder import reconstruction_error, train_autoencoder

        torch.set_num_threads(1)
        vae = train_autoencoder(out / "autoencoder", GeneratorShape())
        print(f"autoencoder: mean abs reconstruction error {reconstruction_error(vae):.2f} / 255", flush=True)
        with atomic_dir(folder) as tmp:
            vae.save_pretrained(tmp, safe_serialization=True)
    return folder


def text_encoder(out: Path) -> Path:
    folder = out / "text_encoder_2"
    if not (folder / "config.json").is_file():
        _run([sys.executable, "-m", "training.grpo.recipes.shapes_text_pretrain", "--out", str(out)])
    return folder


@dataclass(frozen=True)
class FlowMatching:
    """The generator stage's settings. JOINT is the first recipe (the T5 trained with the transformer); FROZEN_T5
    the second: T5 pretrained first and frozen, batch 32 on one process, noise levels drawn logit-normal around
    sigmoid(0.5) = 0.62 instead of 0.5. With the object T5 the shift is what made the transformer bind roles
    (research/shapes_grpo/journal.md, "What made this generator place objects"): at the old levels twins were never both right."""

    processes: int
    batch: int
    sigma_mean: float


JOINT = FlowMatching(processes=2, batch=64, sigma_mean=0.0)
FROZEN_T5 = FlowMatching(processes=1, batch=32, sigma_mean=0.5)


def generator(out: Path, steps: int, settings: FlowMatching, t5: Path | None = None) -> Path:
    folder = out / "generator"
    if not (folder / "model_index.json").is_file():
        stage = ["-m", "training.grpo.recipes.shapes_pretrain", "--out", str(out), "--steps", str(steps),
                 "--batch", str(settings.batch), "--sigma-mean", str(settings.sigma_mean)]  # fmt: skip
        if t5 is not None:
            stage += ["--text-encoder", str(t5)]
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={settings.processes}"]
        _run([sys.executable, *(launcher if settings.processes > 1 else []), *stage])
    return folder


def run_grpo(run: Path, args: list[str]) -> Path:
    """`python -m training.grpo ARGS --out RUN`, resumed when RUN already holds checkpoints; its exported LoRA."""
    if not (run / "lora.safetensors").is_file():
        cmd = [sys.executable, "-m", "training.grpo", *args, "--out", str(run)]
        if (run / "checkpoints").is_dir():
            cmd.append("--resume")
        _run(cmd)
    return run / "lora.safetensors"


def grpo(out: Path, model: Path, train_prompts: Path, heldout: Path, extra: list[str]) -> Path:
    return run_grpo(out / "grpo", ["--preset", "shapes", "--model.path", str(model), "--prompts.train_file",
                                   str(train_prompts), "--prompts.eval_file", str(heldout), *extra])


def evaluate(model: Path, lora: Path | None, heldout: Path) -> dict:
    from ..evaluate.oracle_rates import evaluate_generator

    return evaluate_generator(str(model), str(lora) if lora else None, heldout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.grpo.recipes.shapes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pretrain-steps", type=int, default=2800)
    parser.add_argument("--processes", type=int, help="flow-matching processes, one per core (default: 2 with "
                        "--text-encoder joint, 1 with pretrained; the batch is split between them)")
    parser.add_argument("--until", choices=("generator", "grpo"), default="grpo")
    parser.add_argument("--text-encoder", choices=("joint", "pretrained"), default="pretrained",
                        help="pretrained: T5 pretrained on the prompts first, then frozen (the shipped generator, "
                             "default); joint: T5 trained with the transformer (the first generator, commit 7a30f97)")
    parser.add_argument("--ship", action="store_true")
    parser.add_argument("grpo_args", nargs="*", help="extra --section.field VALUE settings for the GRPO stage")
    args = parser.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    settings = FROZEN_T5 if args.text_encoder == "pretrained" else JOINT
    if args.processes:
        settings = replace(settings, processes=args.processes)
    times = {}  # seconds of each stage in this invocation (a stage already done takes ~0)

    def timed(name, fn, *a):
        clock = time.perf_counter()
        result = fn(*a)
        times[f"{name}_s"] = round(time.perf_counter() - clock, 1)
        return result

    heldout, train_prompts = write_prompts(out)
    t5 = timed("text_encoder", text_encoder, out) if args.text_encoder == "pretrained" else None
    timed("autoencoder", autoencoder, out)
    model = timed("flow_matching", generator, out, args.pretrain_steps, settings, t5)
    results = {"before": timed("evaluate_before", evaluate, model, None, heldout)}
    if args.until == "grpo":
        lora = timed("grpo", grpo, out, model, train_prompts, heldout, args.grpo_args)
        results["after"] = timed("evaluate_after", evaluate, model, lora, heldout)
    write_json(out / "evaluation.json", {**results, "seconds": times})
    print(json.dumps(results, indent=1))
    if args.ship:
        with atomic_dir(ASSETS / "shapes") as tmp:
            shutil.copytree(model, tmp, dirs_exist_ok=True)
        if args.until == "grpo":
            with atomic_dir(ASSETS / "shapes-grpo") as tmp:
                shutil.copy2(lora, tmp / "lora.safetensors")
        print(f"shipped to {ASSETS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
