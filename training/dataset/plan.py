"""What a build makes for scene number i: a pure function of the build settings and i.

Everything (scene, prompt template, perturbations, image seeds, split, generator) is derived from hashes of
(seed, i, k), never from a shared random stream, so a resumed build recreates exactly the pairs an
uninterrupted one would, whatever was done before the kill.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from .config import PROMPT_STYLES, BuildConfig
from .perturb import Perturbation, perturb
from .prompts import PromptChoices, plain_prompt, render, sample_choices
from .scene import Scene, sample_scene
from .worlds import get_world

SPLITS = ("train", "val", "test")
MAX_CHANGES = 3


def derive_seed(*parts) -> int:
    """A 63-bit seed from any parts; stable across processes, platforms and Python versions."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def split_of(scene: Scene, fractions: tuple[float, float, float]) -> str:
    """Split by what the scene says (objects and relations, not where they are): identical scene descriptions
    always share a split, so no prompt of the val/test scenes is ever trained on, whatever the seed."""
    u = derive_seed("split", scene.setting or "", plain_prompt(scene)) / 2**63
    if u < fractions[0]:
        return SPLITS[0]
    return SPLITS[1] if u < fractions[0] + fractions[1] else SPLITS[2]


def pair_id(scene_index: int, k: int) -> str:
    return f"s{scene_index:07d}-p{k}"


def parse_pair_id(pid: str) -> tuple[int, int]:
    """(scene index, pair number) of an id made by `pair_id`; ValueError otherwise."""
    try:
        scene, pair = pid.split("-")
        if scene[0] != "s" or pair[0] != "p":
            raise ValueError
        return int(scene[1:]), int(pair[1:])
    except (ValueError, IndexError, AttributeError):
        raise ValueError(f"not a pair id: {pid!r} (expected like 's0000012-p1')") from None


@dataclass(frozen=True)
class PairPlan:
    id: str
    k: int
    perturbation: Perturbation
    prompt: str
    perturbed_prompt: str
    seeds: dict  # {"chosen": int, "rejected": int}: what the two images were made from

    @property
    def plain_perturbed(self) -> str:
        return plain_prompt(self.perturbation.scene)


@dataclass(frozen=True)
class ScenePlan:
    index: int
    id: str
    scene: Scene
    choices: PromptChoices
    split: str
    generator: int  # index into the build's generators (round-robin by scene)
    pairs: tuple[PairPlan, ...]

    @property
    def plain(self) -> str:
        return plain_prompt(self.scene)


def _perturbations(scene: Scene, cfg: BuildConfig, index: int, attempt: int) -> list[tuple[Perturbation, int]] | None:
    world = get_world(cfg.world)
    found: list[tuple[Perturbation, int]] = []
    seen = {plain_prompt(scene)}
    for k in range(cfg.pairs_per_scene):
        rng = random.Random(derive_seed(cfg.seed, "perturb", index, attempt, k))
        n_max = min(MAX_CHANGES, len(scene.relations))
        result = None
        for _ in range(8):
            n = rng.randint(1, n_max)
            p = perturb(scene, world, rng, n, tries=60)
            if p is not None and plain_prompt(p.scene) not in seen:
                result = p
                break
        if result is None:
            return None
        seen.add(plain_prompt(result.scene))
        found.append((result, derive_seed(cfg.seed, "perturb", index, attempt, k)))
    return found


def plan_scene(cfg: BuildConfig, index: int) -> ScenePlan:
    """The scene, prompts and pairs of scene `index`; resamples (deterministically) until all pairs exist."""
    world = get_world(cfg.world)
    for attempt in range(100):
        scene_seed = derive_seed(cfg.seed, "scene", index, attempt)
        rng = random.Random(scene_seed)
        scene = sample_scene(world, rng)
        perturbations = _perturbations(scene, cfg, index, attempt)
        if perturbations is None:
            continue
        choices = sample_choices(rng, len(scene.relations), PROMPT_STYLES[cfg.prompt_style],
                                 vary_phrases=cfg.prompt_style != "plain")
        image_seed = derive_seed(cfg.seed, "image", index) % 2**31
        pairs = []
        for k, (p, p_seed) in enumerate(perturbations):
            if cfg.generators:
                seeds = {"chosen": image_seed,
                         "rejected": image_seed if cfg.same_noise else derive_seed(cfg.seed, "image", index, k) % 2**31}
            else:  # rendered exactly: the images are functions of the seeds that drew the scene and its change
                seeds = {"chosen": scene_seed, "rejected": p_seed}
            pairs.append(PairPlan(pair_id(index, k), k, p, render(scene, choices), render(p.scene, choices), seeds))
        n_gen = max(1, len(cfg.generators))
        return ScenePlan(index, f"s{index:07d}", scene, choices, split_of(scene, cfg.splits), index % n_gen,
                         tuple(pairs))
    raise RuntimeError(f"scene {index}: no scene with {cfg.pairs_per_scene} distinct perturbations in 100 tries; "
                       "lower pairs_per_scene")
