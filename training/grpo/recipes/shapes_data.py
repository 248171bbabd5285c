"""Prompts and pictures of the shapes world for the generator: held-out prompts, training scenes, rendering.

Held-out prompts are plain-form prompts of scenes drawn from their own seed. Their *texts* are excluded from the
generator's pretraining scenes and from GRPO's training prompts, so "held-out" means prompts the generator never
saw in any stage (the 2-object prompt space is small, about 430 texts, so excluding by scene would not be enough).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from ...dataset.prompts import plain_prompt
from ...dataset.scene import Scene, sample_scene
from ...dataset.shapes_render import render_shapes
from ..shapes_generator import IMAGE_SIZE

HELDOUT_SEED = 2026
PRETRAIN_SEED = 11
GRPO_PROMPT_SEED = 12


def n_objects(prompt: str) -> int:
    from ...dataset.oracle import parse_prompt

    return len({c for r in parse_prompt(prompt) for c in (r.subject[0], r.object[0])})


def distinct_scenes(n: int, seed: int, exclude: Iterable[str] = ()) -> list[Scene]:
    """`n` scenes with pairwise distinct plain prompts, none of whose text is in `exclude`."""
    rng, seen, scenes = random.Random(seed), set(exclude), []
    while len(scenes) < n:
        scene = sample_scene("shapes", rng)
        prompt = plain_prompt(scene)
        if prompt not in seen:
            seen.add(prompt)
            scenes.append(scene)
    return scenes


def heldout_prompts(n: int = 400, seed: int = HELDOUT_SEED) -> list[str]:
    """The generator's held-out evaluation prompts: half 2-object, half 3-object scenes (distinct texts)."""
    rng, seen, two, three = random.Random(seed), set(), [], []
    while len(two) < n // 2 or len(three) < n - n // 2:
        scene = sample_scene("shapes", rng)
        prompt = plain_prompt(scene)
        bucket = two if len(scene.objects) == 2 else three
        if prompt in seen or len(bucket) >= (n // 2 if bucket is two else n - n // 2):
            continue
        seen.add(prompt)
        bucket.append(prompt)
    # interleaved (2, 3, 2, 3, ...): the first N of the file are a balanced subset (GRPO's prompts.num_eval)
    return [p for pair in zip(two, three, strict=True) for p in pair]


def training_scenes(n: int, seed: int, heldout: Iterable[str]) -> list[Scene]:
    """`n` random scenes (prompts may repeat, layouts do not) whose prompt is not a held-out text."""
    rng, banned, scenes = random.Random(seed), set(heldout), []
    while len(scenes) < n:
        scene = sample_scene("shapes", rng)
        if plain_prompt(scene) not in banned:
            scenes.append(scene)
    return scenes


def render_batch(scenes: list[Scene], size: int = IMAGE_SIZE) -> torch.Tensor:
    """[B, 3, size, size] in -1..1 (the autoencoder's range)."""
    arrays = np.stack([np.asarray(render_shapes(s, size), dtype=np.float32) for s in scenes])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2) / 127.5 - 1.0


def write_prompt_file(path: Path, prompts: list[str], header: str) -> Path:
    from ...common.atomic import write_text

    write_text(path, "".join(f"# {line}\n" for line in header.splitlines()) + "".join(p + "\n" for p in prompts))
    return path
