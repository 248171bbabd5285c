"""Reproduce the shipped shapes scorers (`shapes`, `shapes-gen`) from an empty folder.

The command is `python -m training.reward.recipes.shapes`, which forwards here: stages 4 and 7 of `shapes-gen` need
the shapes generator and a GRPO round, so the recipe that composes them sits above both stages (training/recipes/);
the reward-side stages are in training/reward/recipes/shapes.py.

    python -m training.reward.recipes.shapes --out runs/shapes            # data, training, held-out evaluation
    python -m training.reward.recipes.shapes --out runs/shapes --ship     # and copy it into the package

The defaults reproduce the shipped `shapes` scorer (stages 1, 2, 5, 8). `shapes-gen`, GRPO's reward in the shapes
world, which does not pay for clutter (docs/grpo.md), adds stages 3, 4, 6 and 7 (about 73 min on 2 cores):
    python -m training.reward.recipes.shapes --out DIR --object-faults 1 --generated-from shapes \
        --clean-first-steps 300 --onpolicy-steps 50 --ship --ship-name shapes-gen

Stages (each skipped when its output exists; a killed training stage continues from its last checkpoint):
  1. datasets   python -m training.dataset build --world shapes: training pairs (seed 1) and held-out pairs
                (seed 777: other scenes, never seen in training)
  2. negatives  per training row, a random re-layout of its objects that the oracle rejects, as an extra pair
                (shapes_relayout.py): rerankers and GRPO see arbitrary layouts, not only minimal perturbations
  3. objects    per training row, its perfect scene with one object-level fault (shapes_objects.py: an object
                dropped, recoloured or doubled, bars or objects of other colours added): the dataset's pairs
                always draw exactly the named objects, so without these the scorer pays for clutter
  4. generated  pairs within groups of the shapes generator's own samples, labelled by the pixel oracle
                (training/grpo/recipes/shapes_generated_pairs.py; training prompts only, never GRPO's held-out)
  5. reward     python -m training.reward train --preset shapes_coords (the coords backbone, Gaussian
                Bradley-Terry + grounding auxiliary loss, from scratch) on 2-4 together
  6. clean      "clean first" pairs (shapes_clean_first.py: a clean picture with a relation wrong > a cluttered one,
                from the pictures of stages 3-4), then stage 5's scorer trained on for --clean-first-steps more
                steps on 2-4 and these (reward_clean_first/): without them GRPO trades clean pictures for relations
  7. on-policy  (--onpolicy-steps N) GRPO of a LoRA on the shapes generator against stage 6's scorer at KL beta 0 for
                N steps (the regime that finds what the scorer still pays for), that policy's own samples judged by
                the oracle (generated pairs and clean-first pairs, 8 below), and the scorer trained on for
                --clean-first-steps more with them (reward_onpolicy/): one round of iterated reward modelling
  8. evaluate   python -m training.reward evaluate on every held-out pair, plus the 2- / 3-object split, the
                object faults on held-out scenes and the scorer as a reranker of re-layouts
--ship copies the scorer folder to training/reward/assets/shapes/ (self-contained, about 1.5 MB), or with
--ship-name shapes-gen to assets/shapes-gen/: the scorer of stages 3-7, the shapes GRPO preset's reward. It stays
beside `shapes` rather than replacing it because it ranks re-layouts of a rendered scene less well (top-1 of 8:
86.7% against 94.1% on the held-out scenes): each scorer is shipped for what it judges best.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..reward.recipes.shapes import (
    PRESET,
    build_data,
    combine_pairs,
    evaluate,
    run_command,
    ship,
    train_scorer,
)

ONPOLICY_SEED = 14  # the on-policy pairs' training scenes: other than GRPO's (12) and stage 4's (13)


def onpolicy_round(out: Path, scorer: Path, train: Path, grpo_steps: int, prompts: int, steps: int) -> Path:
    """Stage 7: a policy trained against `scorer` at beta 0 shows what the scorer still pays for; its own samples,
    labelled by the oracle, are what the scorer learns next (the scorer trained on from `scorer` on `train` + them)."""
    from ..grpo.recipes.shapes_generated_pairs import build_generated_pairs
    from .shapes_clean_first import build_clean_first

    run = out / "onpolicy_grpo"
    if not (run / "lora.safetensors").is_file():
        cmd = ["-m", "training.grpo", "--preset", "shapes", "--reward.path", str(scorer.resolve()), "--train.beta", "0",
               "--steps", str(grpo_steps), "--out", str(run)]
        run_command(cmd + (["--resume"] if (run / "checkpoints").is_dir() else []))
    print(f"$ on-policy pairs ({prompts} prompts of that policy) -> {out / 'generated_onpolicy'}", flush=True)
    generated = build_generated_pairs(out / "generated_onpolicy", "shapes", lora=str(run / "lora.safetensors"),
                                      prompts=prompts, seed=ONPOLICY_SEED)
    clean_first = build_clean_first(None, generated, out / "train_clean_first_onpolicy")
    train = combine_pairs([train, generated, clean_first], out / "train_all_onpolicy")
    return train_scorer(train, out / "reward_onpolicy", steps, init_from=scorer)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.reward.recipes.shapes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="run folder (created; stages found there are skipped)")
    ap.add_argument("--train-pairs", type=int, default=16000, help="pairs built for training (80%% train split)")
    ap.add_argument("--heldout-pairs", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=0, help=f"override the {PRESET} preset's steps")
    ap.add_argument("--relayouts", type=int, default=1,
                    help="extra negatives per training row: its objects at random places (0: none)")
    ap.add_argument("--object-faults", type=int, default=0,
                    help="extra negatives per training row: its perfect scene with one object-level fault (0: none)")
    ap.add_argument("--generated-from", default="none",
                    help="FLUX pipeline folder or shipped generator whose samples make oracle-labelled pairs "
                         "('none': no generated pairs)")
    ap.add_argument("--generated-prompts", type=int, default=1000, help="training prompts sampled for them")
    ap.add_argument("--clean-first-steps", type=int, default=0,
                    help="steps of stage 6 on the clean-first pairs (0: ship stage 5's scorer)")
    ap.add_argument("--onpolicy-steps", type=int, default=0,
                    help="GRPO steps of stage 7's policy against stage 6's scorer (0: no on-policy round)")
    ap.add_argument("--onpolicy-prompts", type=int, default=500, help="training prompts sampled from that policy")
    ap.add_argument("--ship", action="store_true", help="copy the scorer into training/reward/assets/NAME/")
    ap.add_argument("--ship-name", default="shapes",
                    help="NAME: 'shapes' (the pack's default scorer) or 'shapes-gen' (GRPO's reward: stages 3, 4, 6, 7)")
    args = ap.parse_args(argv)
    if min(args.object_faults, args.generated_prompts, args.clean_first_steps, args.onpolicy_steps,
           args.onpolicy_prompts) < 0:
        ap.error("counts and steps must be >= 0")
    if args.clean_first_steps and not args.object_faults:
        ap.error("--clean-first-steps needs the object faults (--object-faults >= 1)")
    if args.onpolicy_steps and not args.clean_first_steps:
        ap.error("--onpolicy-steps needs stage 6 (--clean-first-steps >= 1)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    train, heldout = build_data(out, args.train_pairs, args.heldout_pairs)
    from ..reward.recipes.shapes_relayout import build_mix

    print(f"$ relayout negatives ({args.relayouts} per row) -> {out / 'train_mix'}", flush=True)
    train = build_mix(train, out / "train_mix", per_row=args.relayouts)  # also makes image paths absolute
    sources = [train]
    if args.object_faults:
        from ..reward.recipes.shapes_objects import build_object_negatives

        print(f"$ object faults ({args.object_faults} per row) -> {out / 'train_objects'}", flush=True)
        sources = [build_object_negatives(sources[0], out / "train_objects", per_row=args.object_faults)]
    if args.generated_from != "none":
        from ..grpo.recipes.shapes_generated_pairs import build_generated_pairs

        print(f"$ generated pairs ({args.generated_prompts} prompts of {args.generated_from}) -> {out / 'generated'}",
              flush=True)
        sources.append(build_generated_pairs(out / "generated", args.generated_from, prompts=args.generated_prompts))
    if sources != [train]:
        train = combine_pairs(sources, out / "train_all")
    scorer = train_scorer(train, out / "reward", args.steps)
    if args.clean_first_steps:
        from .shapes_clean_first import build_clean_first

        print(f"$ clean-first pairs -> {out / 'train_clean_first'}", flush=True)
        clean_first = build_clean_first(sources[0], sources[1] if len(sources) > 1 else None,
                                        out / "train_clean_first")
        train = combine_pairs([train, clean_first], out / "train_all_clean_first")
        scorer = train_scorer(train, out / "reward_clean_first", args.clean_first_steps, init_from=scorer)
    if args.onpolicy_steps:
        scorer = onpolicy_round(out, scorer, train, args.onpolicy_steps, args.onpolicy_prompts, args.clean_first_steps)
    by_objects = evaluate(scorer, heldout, out)
    if args.ship:
        recipe = " ".join(["python -m training.reward.recipes.shapes", *(argv or sys.argv[1:])])
        notes = {"recipe": f"{recipe} (preset {PRESET})", "heldout": by_objects}
        print("shipped:", ship(scorer, notes, name=args.ship_name))
    print(f"recipe done in {(time.time() - t0) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
