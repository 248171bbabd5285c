"""Scorer training pairs from the generator's own pictures, verified: what the paper's 80k pairs are.

    python -m training.grpo.recipes.shapes_generated_pairs --out DIR [--model shapes] [--lora FILE|NAME]
                                                           [--prompts 400] [--seed 13]

The shipped scorer learned from clean renders that draw exactly the named objects; GRPO asks it to rank a
generator's samples, which fail in other ways (research/shapes_grpo/journal.md, "Where the bottleneck was"). Here, for `--prompts`
training scenes (never a held-out text), one GRPO group (24 SDE samples at the preset's noise level, as the trainer
draws them) is judged by the pixel oracle (oracle_judge.oracle_verdicts, with its `clean` check: the named objects,
each once, and nothing else), and pairs are made within the group, so both sides look generated:
  verified > failing   every relation holds in a clean picture, against one where a relation fails, an object is
                       missing, or the picture is not clean
  verified > unclean   the same, against a picture where every relation holds only among extra objects or smears
                       (the shortcut GRPO takes against a scorer that pays for clutter)
  drawn > missing      every object drawn (some relations wrong) against one with an object missing
The oracle labels the scorer's training data here, as it verifies the dataset's renders; it is never GRPO's reward,
and no held-out prompt is used. Each picture carries the layout the oracle found (for the grounding loss).
Writes DIR/images/*.png and DIR/pairs.jsonl (last, atomically); a finished folder is skipped.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

PAIRS_FILE = "pairs.jsonl"
GENERATED_SEED = 13  # the prompts' scenes: other than pretraining (11), GRPO (12) and held-out (2026)
# A sample's level, from the oracle (oracle_judge.oracle_verdicts):
MISSING = 0  # a named object is not drawn in its colour
DRAWN = 1  # every named object drawn, some relation fails
UNCLEAN = 2  # every relation holds, but the picture is not clean (extra objects, a colour twice or smeared):
#              what a GRPO policy reaches for when the scorer does not punish clutter (docs/grpo.md)
VERIFIED = 3  # every relation holds in a clean picture
# (better levels, worse levels) of each kind of pair made within a group
PAIR_KINDS = (((VERIFIED,), (MISSING, DRAWN, UNCLEAN)), ((VERIFIED,), (UNCLEAN,)), ((DRAWN, UNCLEAN), (MISSING,)))


def split_of(group: int) -> str:
    """Every tenth group's pairs validate the scorer (its best checkpoint is chosen on them too)."""
    return "val" if group % 10 == 0 else "train"


def verdicts_with_layouts(images, prompt: str) -> list[dict]:
    """Per picture: level (above), failing relations, and its scene as the oracle found it
    ({"objects": [{color, category, box}]}: the named objects drawn)."""
    from ...common.images import to_pil_list
    from ...dataset.oracle import parse_prompt
    from ..oracle_judge import oracle_verdicts

    pictures = to_pil_list(images)
    shape = {c: s for r in parse_prompt(prompt) for c, s in (r.subject, r.object)}
    out = []
    for v in oracle_verdicts(pictures, [prompt] * len(pictures)):
        holds = all(v["relations"])
        level = (VERIFIED if holds and v["clean"] else UNCLEAN if holds else DRAWN if v["objects_ok"] else MISSING)
        objects = [{"id": c, "color": c, "category": shape[c], "box": list(box)} for c, box in v["boxes"].items()]
        out.append({"level": level, "failing": max(1, sum(not x for x in v["relations"])),
                    "scene": {"objects": objects}})
    return out


def group_pairs(verdicts: list[dict], rng: random.Random, per_kind: int = 2) -> list[tuple[int, int]]:
    """(chosen, rejected) sample indices: up to `per_kind` pairs of each of PAIR_KINDS."""
    pairs = []
    for better, worse in PAIR_KINDS:
        good = [i for i, v in enumerate(verdicts) if v["level"] in better]
        bad = [i for i, v in enumerate(verdicts) if v["level"] in worse]
        if good and bad:
            pairs += [(rng.choice(good), rng.choice(bad)) for _ in range(per_kind)]
    return sorted(set(pairs))


def build_generated_pairs(out: Path, model: str = "shapes", lora: str | None = None, prompts: int = 400,
                          seed: int = GENERATED_SEED, per_kind: int = 2) -> Path:
    from tqdm import tqdm

    from ...common.atomic import write_text
    from ...dataset.prompts import plain_prompt
    from ..config import load_config
    from ..sampling import load_policy, sample_generators, sample_trajectories
    from ..shipped import resolve_generator, resolve_lora
    from .shapes_data import distinct_scenes, heldout_prompts

    result = out / PAIRS_FILE
    if result.is_file():
        return result
    (out / "images").mkdir(parents=True, exist_ok=True)
    s = load_config(preset="shapes", overrides={"output.dir": "unused"}).sample
    policy = load_policy(resolve_generator(model), resolve_lora(lora) if lora else None, "cpu", 40)
    sigmas = policy.sigmas(s.num_steps, s.height, s.width)
    rng = random.Random(seed)
    lines, tag = [], "lora" if lora else "base"
    for k, scene in enumerate(tqdm(distinct_scenes(prompts, seed, exclude=heldout_prompts()), desc="groups")):
        prompt = plain_prompt(scene)
        with torch.no_grad():
            t = sample_trajectories(policy, policy.encode_prompts([prompt] * s.group_size),
                                    sample_generators(seed, k, range(s.group_size)), sigmas,
                                    [s.noise_level] * s.num_steps, guidance=0.0, height=s.height, width=s.width)
            images = policy.decode(t.latents[:, -1])
        verdicts = verdicts_with_layouts(images, prompt)
        pictures = None
        for chosen, rejected in group_pairs(verdicts, rng, per_kind):
            if pictures is None:
                from ...common.images import to_pil_list

                pictures = to_pil_list(images)
            names = []
            for i in (chosen, rejected):
                name = f"images/{tag}{k:05d}_{i:02d}.png"
                if not (out / name).is_file():
                    pictures[i].save(out / name)
                names.append(str((out / name).resolve()))
            lines.append(json.dumps({
                "id": f"gen-{tag}{k:05d}-{chosen}-{rejected}", "split": split_of(k), "prompt": prompt,
                "chosen": names[0], "rejected": names[1], "perturbations": verdicts[rejected]["failing"],
                "scene": verdicts[chosen]["scene"], "perturbed_scene": verdicts[rejected]["scene"],
                "generator": f"shapes-generated-{tag}",
                "levels": [verdicts[chosen]["level"], verdicts[rejected]["level"]]}) + "\n")
    write_text(result, "".join(lines))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.grpo.recipes.shapes_generated_pairs",
                                     description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--lora")
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("--seed", type=int, default=GENERATED_SEED)
    args = parser.parse_args(argv)
    if args.prompts < 1:
        print("--prompts must be >= 1", file=sys.stderr)
        return 2
    result = build_generated_pairs(args.out, args.model, args.lora, args.prompts, args.seed)
    rows = [json.loads(x) for x in result.read_text().splitlines() if x.strip()]
    print(json.dumps({"pairs": len(rows), "file": str(result)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
