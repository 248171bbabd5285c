"""The generators and LoRAs shipped inside the package, by name: `shapes`, `shapes-grpo` and `shapes-fast`.

`shapes` is a FluxPipeline folder (training/grpo/assets/shapes/), the shapes world's small FLUX; `shapes-grpo` is
the LoRA that Spatial GRPO (Flow-GRPO) against the shipped `shapes-gen` scorer trained on it (`python -m training.grpo
--preset shapes`, the GRPO stage of training/grpo/recipes/shapes.py); `shapes-fast` the one DiffusionNFT trained
against the same scorer in a ninth of the CPU time (`python -m training.grpo --preset shapes_fast`,
training/grpo/recipes/shapes_fast.py; the shapes speed study in docs/grpo.md).
"""

from __future__ import annotations

import re
from pathlib import Path

from safetensors import safe_open

ASSETS = Path(__file__).resolve().parent / "assets"
GENERATORS = {"shapes": ASSETS / "shapes"}
LORAS = {"shapes-grpo": ASSETS / "shapes-grpo" / "lora.safetensors",
         "shapes-fast": ASSETS / "shapes-fast" / "lora.safetensors"}
_KEY = re.compile(r"^transformer\.(?:single_)?transformer_blocks\.\d+\.(.+)\.lora_([AB])\.weight$")


class AssetError(ValueError):
    """A model or LoRA argument that names nothing usable; the message says what was expected."""


def resolve_generator(name_or_path: str) -> Path:
    """A shipped generator's folder by name, or a FluxPipeline folder (model_index.json) by path."""
    path = GENERATORS.get(name_or_path, Path(name_or_path))
    if not (path / "model_index.json").is_file():
        if name_or_path in GENERATORS:
            raise AssetError(f"the shipped generator {name_or_path!r} is missing from {path}")
        raise AssetError(f"--model {name_or_path}: not a FluxPipeline folder (no model_index.json) and not one of "
                         f"the shipped generators ({', '.join(GENERATORS)})")  # fmt: skip
    return path


def resolve_lora(name_or_path: str) -> Path:
    path = LORAS.get(name_or_path, Path(name_or_path))
    if not path.is_file():
        raise AssetError(f"--lora {name_or_path}: no such file, and not one of the shipped LoRAs ({', '.join(LORAS)})")
    return path


def lora_file_spec(path: Path) -> tuple[int, list[str]]:
    """(rank, targets) of an exported Flux LoRA file in diffusers keys, so a policy can attach a matching adapter."""
    try:
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
            ranks = {f.get_slice(k).get_shape()[0] for k in keys if k.endswith("lora_A.weight")}
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise AssetError(f"--lora {path}: not a readable .safetensors LoRA ({exc})") from exc
    targets = sorted({m.group(1) for k in keys if (m := _KEY.match(k))})
    if not targets or len(ranks) != 1:
        raise AssetError(f"--lora {path}: expected a Flux LoRA in diffusers keys (transformer.<block>.<module>."
                         "lora_A.weight) of one rank")  # fmt: skip
    return ranks.pop(), targets
