"""The variants of an evaluation (the base model, and the base with each LoRA) and their images, headless.

Sampling is `training.grpo.sampling.generate` (FluxPolicy + the SDE step at noise 0, i.e. the Euler ODE), which
`sample_eval` uses too, so the base and LoRA pictures here are `sample_eval`'s pictures for the same seed: image
j of prompt i is drawn from the noise `sample_eval --seed SEED+j` gives prompt i, for every variant alike. The base
pictures come from the first LoRA's policy with its adapter switched off (peft's disabled adapter is the base layer
itself), so the model is loaded once per LoRA and never only for the base.

A LoRA is checked against the model before anything loads: a file whose modules are not this model's (a LoRA for
FLUX.1-dev on the shapes generator, an SDXL LoRA) is refused with one line instead of failing in the middle.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from ..shipped import LORAS, AssetError, lora_file_spec, resolve_generator, resolve_lora

_LORA_KEY = re.compile(r"^transformer\.(.+)\.lora_([AB])\.weight$")


@dataclass(frozen=True)
class Variant:
    name: str  # "base", or the LoRA's name as the report shows it
    lora: Path | None = None


def plan_variants(loras: list[str]) -> list[Variant]:
    """base, then one variant per LoRA (a shipped name or a file), names made unique for the report."""
    variants = [Variant("base")]
    for given in loras:
        path = resolve_lora(given)
        # runs/x/lora.safetensors (what a GRPO run writes) is shown as "x"
        name = given if given in LORAS else (path.parent.name if path.stem == "lora" else path.stem) or path.stem
        while any(v.name == name for v in variants):
            name += "'"
        variants.append(Variant(name, path))
    return variants


def transformer_weight_shapes(model: Path) -> dict[str, tuple[int, ...]]:
    """{weight name: shape} of a FluxPipeline folder's transformer, read from the safetensors headers only."""
    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted((model / "transformer").glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                shapes[key] = tuple(f.get_slice(key).get_shape())
    return shapes


def check_lora_fits(model: Path, lora: Path, shown: str) -> None:
    """AssetError (one line) unless every module the LoRA adapts is a module of this model with the same sizes."""
    try:
        lora_file_spec(lora)
    except AssetError as exc:
        with safe_open(str(lora), framework="pt") as f:
            sample = next(iter(f.keys()), "")
        raise AssetError(f"--lora {shown}: not a LoRA for this kind of model (a FLUX LoRA in diffusers keys, "
                         f"transformer.<block>.<module>.lora_A.weight); its keys look like {sample!r}: a LoRA for "
                         f"another model family? ({exc})") from None  # fmt: skip
    weights = transformer_weight_shapes(model)
    if not weights:
        return  # a folder of .bin weights: the policy's own load checks the keys, still before sampling
    problems, modules = [], 0
    with safe_open(str(lora), framework="pt") as f:
        for key in sorted(f.keys()):
            match = _LORA_KEY.match(key)
            if not match:
                continue
            module, side = match.groups()
            modules += side == "A"
            shape = tuple(f.get_slice(key).get_shape())
            weight = weights.get(f"{module}.weight")
            if weight is None:
                problems.append(f"{module} is not a module of this model")
            elif (side == "A" and shape[1] != weight[1]) or (side == "B" and shape[0] != weight[0]):
                size = f"{shape[1]} inputs" if side == "A" else f"{shape[0]} outputs"
                problems.append(f"{module} has {size} in the LoRA, {weight[1] if side == 'A' else weight[0]} in "
                                "the model")  # fmt: skip
    if problems:
        raise AssetError(f"--lora {shown}: made for another model: {len(problems)} of its {2 * modules} tensors do "
                         f"not fit {model.name} ({problems[0]}); evaluate it with the model it was trained on")  # fmt: skip


def sampling_settings(model: Path, num_steps=None, guidance=None, height=None, width=None) -> dict:
    """The model's own sampling settings (a shipped generator's file; FLUX.1-dev's defaults), as `sample` uses."""
    from ..sampling import settings_for

    return settings_for(model, argparse.Namespace(num_steps=num_steps, guidance=guidance, height=height, width=width))


def sample_variants(model_name: str, variants: list[Variant], prompts: list[str], settings: dict, *, seed: int = 0,
                    images_per_prompt: int = 1, batch_size: int = 50, device: str = "auto",
                    progress=None) -> dict[str, torch.Tensor]:  # fmt: skip
    """{variant name: images [P, K, H, W, 3] in 0..1}; image j of every variant from `sample_eval`'s noise for
    seed + j. `progress(done, total)` after each batch of images."""
    from ..sampling import generate, load_policy

    model = resolve_generator(model_name)
    total = len(prompts) * images_per_prompt * len(variants)
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    def draw(policy, with_lora: bool) -> torch.Tensor:
        runs = [generate(policy, prompts, settings, seed + j, batch_size, with_lora, step)
                for j in range(images_per_prompt)]  # fmt: skip
        return torch.stack(runs, dim=1)

    images: dict[str, torch.Tensor] = {}
    loras = [v for v in variants if v.lora is not None]
    if not loras:
        policy = load_policy(model, None, device, settings["max_sequence_length"])
        images["base"] = draw(policy, False)
        return images
    for i, variant in enumerate(loras):
        policy = load_policy(model, variant.lora, device, settings["max_sequence_length"])
        if i == 0:
            images["base"] = draw(policy, False)
        images[variant.name] = draw(policy, True)
        del policy  # one FLUX at a time in memory
    return {v.name: images[v.name] for v in variants}
