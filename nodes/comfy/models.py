"""Place a SpatialScore scorer through ComfyUI's model management.

The scorer's torch module is wrapped in a ModelPatcher, so `load_models_gpu` first evicts whatever ComfyUI holds on
the GPU (Flux, its text encoders) to make room, and ComfyUI can evict the scorer in turn when something else needs
the memory. The load is always a full load: the scorer's layers are plain torch modules, not comfy.ops, so the
partial ("lowvram") load would leave some weights behind on the CPU.
"""

from __future__ import annotations

import logging

import comfy.model_management as mm
import comfy.model_patcher
import torch

from ..logic.memory_check import Free, available_ram


class SpatialScoreWeights(torch.nn.Module):
    """A container ModelPatcher can annotate (it sets .device and bookkeeping attributes) without touching the
    scorer's own module."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner


class ComfyPlacement:
    def __init__(self, scorer, load_device: torch.device, offload_device: torch.device):
        module = getattr(scorer, "model", None)
        self.load_device = torch.device(load_device)
        self.offload_device = torch.device(offload_device)
        self.patcher = None
        if isinstance(module, torch.nn.Module):
            self.patcher = comfy.model_patcher.ModelPatcher(SpatialScoreWeights(module), load_device=self.load_device,
                                                            offload_device=self.offload_device)

    def load(self, scorer) -> None:
        mm.throw_exception_if_processing_interrupted()
        if self.patcher is not None:
            mm.load_models_gpu([self.patcher], force_full_load=True)
        if hasattr(scorer, "to"):
            scorer.to(self.load_device)  # the scorer keeps its own idea of its device; make it agree

    def offload(self, scorer) -> None:
        """Unregister from ComfyUI's loaded models (which moves the weights to the offload device)."""
        if self.patcher is not None:
            for i, loaded in enumerate(list(mm.current_loaded_models)):
                if loaded.model is self.patcher:
                    loaded.model_unload()
                    mm.current_loaded_models.pop(i)
                    break
        if hasattr(scorer, "to"):
            scorer.to(self.offload_device)
        elif hasattr(scorer, "release"):
            scorer.release()
        if self.load_device.type != "cpu":
            mm.soft_empty_cache()
        logging.debug("SpatialScore: scorer offloaded to %s", self.offload_device)

    def is_registered(self) -> bool:
        return self.patcher is not None and any(m.model is self.patcher for m in mm.current_loaded_models)


def free_for_sampling() -> Free:
    """What sampling on ComfyUI's compute device may use: on a GPU what is free plus what ComfyUI's loaded models
    hold there (it evicts them to make room); on the CPU the RAM the kernel can still give (MemAvailable)."""
    device = mm.get_torch_device()
    ram = available_ram()
    if device.type == "cpu":
        return Free(ram, ram, "RAM")
    evictable = sum(loaded.model_loaded_memory() for loaded in mm.current_loaded_models if loaded.device == device)
    return Free(int(mm.get_free_memory(device)) + int(evictable), ram, str(device))


def compute_devices(device_choice: str) -> tuple[torch.device, torch.device]:
    """(load device, offload device) for the loader's device option."""
    if device_choice == "cpu":
        return torch.device("cpu"), torch.device("cpu")
    if device_choice != "auto":
        raise ValueError(f"device: expected 'auto' or 'cpu', got {device_choice!r}")
    return mm.get_torch_device(), mm.text_encoder_offload_device()


def resolve_dtype(dtype_choice: str, device: torch.device) -> tuple[torch.dtype, str]:
    """The torch dtype for the loader's dtype option; "auto" follows what ComfyUI picks for this device."""
    fixed = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if dtype_choice in fixed:
        return fixed[dtype_choice], dtype_choice
    if dtype_choice != "auto":
        raise ValueError(f"dtype: expected one of auto, {', '.join(fixed)}, got {dtype_choice!r}")
    if mm.should_use_bf16(device):
        return torch.bfloat16, "bf16"
    if mm.should_use_fp16(device):
        return torch.float16, "fp16"
    return torch.float32, "fp32"
