"""Text-to-image generators: any diffusers pipeline saved in a local folder (Flux, Qwen-Image, SD3, ...).

Folders only, never a hub name, never a download. Batches of prompts with one seed per image (a
torch.Generator each, so an image does not depend on its batch), bf16 on GPU.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from pathlib import Path


@contextlib.contextmanager
def _quiet_diffusers():
    """CLIP's 77-token truncation notice would repeat for every batch of long prompts (T5 reads them whole)."""
    from diffusers.utils import logging as dlogging

    level = dlogging.get_verbosity()
    dlogging.set_verbosity_error()
    try:
        yield
    finally:
        dlogging.set_verbosity(level)


class GeneratorError(ValueError):
    """A generator folder that does not exist or is not a diffusers pipeline."""


def check_generator_folder(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise GeneratorError(f"generator folder not found: {path} (expected a local diffusers pipeline folder "
                             "with model_index.json; models are never downloaded)")
    if not path.is_dir():
        raise GeneratorError(f"generator path is not a folder: {path}")
    if not (path / "model_index.json").is_file():
        raise GeneratorError(f"generator folder {path} has no model_index.json: not a diffusers pipeline folder "
                             "(save one with pipeline.save_pretrained(folder))")
    return path


def resolve_device(device: str = "auto"):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GeneratorError(f"device {device!r} asked for, but no CUDA device is available")
    return dev


class Generator:
    """A loaded pipeline; call it with prompts and one seed per prompt, get PIL images back."""

    def __init__(self, path: str | os.PathLike, name: str, device: str = "auto", pipeline_kwargs: dict | None = None):
        import torch
        from diffusers import DiffusionPipeline

        self.path = check_generator_folder(path)
        self.name = name
        self.device = resolve_device(device)
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        try:
            with warnings.catch_warnings():  # newer diffusers renamed torch_dtype; older ones know only it
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                self.pipe = DiffusionPipeline.from_pretrained(self.path, local_files_only=True,
                                                              torch_dtype=self.dtype)
        except Exception as exc:  # diffusers raises many types for broken folders
            raise GeneratorError(f"cannot load generator folder {self.path}: {type(exc).__name__}: {exc}") from exc
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.extra = dict(pipeline_kwargs or {})
        self._params = set(inspect.signature(self.pipe.__call__).parameters)

    def __call__(self, prompts: list[str], seeds: list[int], height: int, width: int, steps: int,
                 guidance: float):
        import torch

        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        # CPU generators: the starting noise of a seed is the same on every device, so a recorded seed
        # reproduces its image on another machine (up to the kernels' rounding).
        kwargs = {"prompt": list(prompts), "height": height, "width": width, "num_inference_steps": steps,
                  "generator": [torch.Generator("cpu").manual_seed(int(s)) for s in seeds],
                  "output_type": "pil"}
        if "guidance_scale" in self._params:
            kwargs["guidance_scale"] = guidance
        unknown = [k for k in self.extra if k not in self._params]
        if unknown:
            raise GeneratorError(f"pipeline {type(self.pipe).__name__} ({self.path}) takes no argument(s) "
                                 f"{', '.join(unknown)}")
        kwargs.update(self.extra)
        with torch.inference_mode(), _quiet_diffusers():
            return list(self.pipe(**kwargs).images)

    def release(self) -> None:
        """Free the accelerator memory this pipeline holds."""
        import torch

        self.pipe = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class ModelSlot:
    """Holds one model at a time (generator, scorer or language model) unless asked to keep them all:
    big models take turns on the accelerator instead of fighting over it."""

    def __init__(self, keep_loaded: bool = False):
        self.keep_loaded = keep_loaded
        self.models: dict[str, object] = {}

    def get(self, key: str, load):
        if key not in self.models:
            if not self.keep_loaded:
                self.clear()
            self.models[key] = load()
        return self.models[key]

    def clear(self) -> None:
        for model in self.models.values():
            release = getattr(model, "release", None)
            if release is not None:
                release()
        self.models.clear()
