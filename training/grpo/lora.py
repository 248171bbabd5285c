"""LoRA on a diffusers transformer (Flux; Qwen-Image, whose blocks are also `transformer_blocks.N`): which modules,
how to attach it, and the one-file export.

The exported file holds only `transformer.<module>.lora_A.weight` / `lora_B.weight` (diffusers' LoRA keys),
with the adapter's scale (alpha / rank) multiplied into lora_B: a file without alpha entries is read at scale 1 by
both diffusers' `load_lora_weights` and ComfyUI's comfy/lora.py, so folding makes every loader apply exactly the
delta that was trained.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..common.atomic import atomic_path
from ..common.finite import require_finite_weights
from ..common.os_errors import os_errors_name
from .validation import ConfigError

ADAPTER = "default"
PREFIX = "transformer."


def target_regex(targets: list[str]) -> str:
    """A full-match regex for `targets` (names inside a block) in the transformer's blocks only (Flux's double and
    single blocks, Qwen-Image's blocks).

    Matching inside blocks keeps e.g. "proj_out" from also catching the transformer's final projection.
    """
    names = "|".join(re.escape(t) for t in targets)
    return rf"^(?:single_)?transformer_blocks\.\d+\.(?:{names})$"


def attach_lora(transformer: torch.nn.Module, rank: int, alpha: float, targets: list[str], seed: int) -> list[str]:
    """Freeze the transformer and add one trainable fp32 LoRA (A gaussian, B zero: the policy starts as the base).

    Returns the adapted module names. Raises if `targets` match nothing.
    """
    from peft import LoraConfig

    pattern = target_regex(targets)
    matched = [name for name, m in transformer.named_modules() if re.fullmatch(pattern, name)]
    if not matched:
        raise ConfigError(f"lora.targets {targets} match no module of the transformer's blocks")
    missing = [t for t in targets if not any(name.endswith("." + t) for name in matched)]
    if missing:
        raise ConfigError(f"lora.targets {missing} match no module of the transformer's blocks")
    transformer.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=pattern, init_lora_weights="gaussian")
        transformer.add_adapter(config, adapter_name=ADAPTER)
    for p in transformer.parameters():
        if p.requires_grad:
            p.data = p.data.float()  # the optimizer and its updates stay in fp32 under a bf16 base
    return matched


def _lora_layers(transformer: torch.nn.Module):
    from peft.tuners.lora import LoraLayer

    for name, module in transformer.named_modules():
        if isinstance(module, LoraLayer) and ADAPTER in module.lora_A:
            yield name, module


def export_state_dict(transformer: torch.nn.Module, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The adapter in diffusers keys with its scale folded into lora_B, on the CPU."""
    out = {}
    for name, module in _lora_layers(transformer):
        a = module.lora_A[ADAPTER].weight.detach().float()
        b = module.lora_B[ADAPTER].weight.detach().float() * module.scaling[ADAPTER]
        # clone: for fp32 CPU weights .float()/.to()/.cpu() return the parameter itself, and an export must not
        # change when the weights do (e.g. an EMA swapped out after the export was taken)
        out[f"{PREFIX}{name}.lora_A.weight"] = a.to(dtype).cpu().contiguous().clone()
        out[f"{PREFIX}{name}.lora_B.weight"] = b.to(dtype).cpu().contiguous().clone()
    if not out:
        raise ValueError("the transformer has no LoRA adapter to export")
    return out


def save_lora_file(state: dict[str, torch.Tensor], path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write one .safetensors atomically (a reader never sees half a file)."""
    path = Path(path)
    require_finite_weights(state.items(), f"LoRA export {path.name}")  # a NaN LoRA loads fine and draws noise
    with os_errors_name(path), atomic_path(path) as tmp:  # a full disk: one line naming the file, not a traceback
        save_file(state, str(tmp), metadata={"format": "pt", **(metadata or {})})
    return path


def load_lora_file(transformer: torch.nn.Module, path: str | os.PathLike) -> int:
    """Load an exported (folded) file into the attached adapter, un-folding the scale; returns modules loaded."""
    layers = dict(_lora_layers(transformer))
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        expected = {f"{PREFIX}{n}.lora_{ab}.weight" for n in layers for ab in "AB"}
        if keys != expected:
            extra, lacking = sorted(keys - expected)[:3], sorted(expected - keys)[:3]
            raise ConfigError(f"{path}: LoRA keys do not match this model's adapter (unexpected {extra}, missing "
                             f"{lacking}); was it trained with the same lora.targets?")
        for name, module in layers.items():
            a, b = f.get_tensor(f"{PREFIX}{name}.lora_A.weight"), f.get_tensor(f"{PREFIX}{name}.lora_B.weight")
            weight_a, weight_b = module.lora_A[ADAPTER].weight, module.lora_B[ADAPTER].weight
            if a.shape != weight_a.shape or b.shape != weight_b.shape:
                raise ConfigError(f"{path}: {name} has rank {a.shape[0]}, the adapter has rank {weight_a.shape[0]}")
            with torch.no_grad():
                weight_a.copy_(a)
                weight_b.copy_(b.float() / module.scaling[ADAPTER])
    return len(layers)
