"""Turn every image form users hand us into RGB PIL images, with errors that name the bad image.

Accepted: PIL images of any mode (RGBA is composited on white, L/I;16/F are scaled to 8 bits), numpy arrays
HW or HWC (uint8, uint16, or float in 0..1), torch tensors HWC or BHWC (ComfyUI's IMAGE: float 0..1), and paths.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


class ImageInputError(ValueError):
    """An image that cannot be scored: empty, NaN, wrong shape, unreadable file."""


def _array_to_pil(arr: np.ndarray, name: str) -> Image.Image:
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise ImageInputError(f"{name}: expected an image of shape HxW or HxWxC, got shape {tuple(arr.shape)}")
    h, w, c = arr.shape
    if h == 0 or w == 0:
        raise ImageInputError(f"{name}: image has zero size ({h}x{w})")
    if c not in (1, 3, 4):
        raise ImageInputError(f"{name}: expected 1, 3 or 4 channels, got {c} (shape {tuple(arr.shape)})")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise ImageInputError(f"{name}: image contains NaN or infinite values")
        out = np.clip(out, 0.0, 1.0)
    elif arr.dtype == np.bool_:
        out = arr.astype(np.float32)
    else:
        raise ImageInputError(f"{name}: unsupported pixel type {arr.dtype}")
    if c == 1:
        out = np.repeat(out, 3, axis=2)
    elif c == 4:  # composite on white, as a viewer would show it
        alpha = out[:, :, 3:4]
        out = out[:, :, :3] * alpha + (1.0 - alpha)
    return Image.fromarray((out * 255.0 + 0.5).astype(np.uint8), mode="RGB")


def _pil_to_rgb(img: Image.Image, name: str) -> Image.Image:
    if img.width == 0 or img.height == 0:
        raise ImageInputError(f"{name}: image has zero size ({img.height}x{img.width})")
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _array_to_pil(_scale_wide(np.asarray(img)), name)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return _array_to_pil(np.asarray(img.convert("RGBA")), name)
    return img.convert("RGB")


def _scale_wide(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint16 or (np.issubdtype(arr.dtype, np.integer) and arr.max(initial=0) > 255):
        return arr.astype(np.float32) / 65535.0
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.float32) / 255.0
    return arr.astype(np.float32)


NOT_FOUND = "image file not found"


def why_not_a_file(path: Path) -> str:
    """Why `path` cannot be read as a file, in words: missing, a folder, a symlink loop, a broken link..."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link loop, not an image file"
        if path.is_symlink():
            return f"a broken symbolic link (to {os.readlink(path)}), not an image file"
        return NOT_FOUND
    if path.is_dir():
        return "a folder, not an image file"
    return "not a regular file (a device, socket or pipe), not an image file"


def load_image_file(path: str | os.PathLike) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        reason = why_not_a_file(path)
        raise ImageInputError(f"{reason}: {path}" if reason == NOT_FOUND else f"{path}: {reason}")
    try:
        with Image.open(path) as img:
            img.load()
            return _pil_to_rgb(img, str(path))
    except ImageInputError:
        raise
    except Exception as exc:  # PIL raises many types for corrupt files
        raise ImageInputError(f"cannot read image file {path}: {exc}") from exc


def to_pil_list(images) -> list[Image.Image]:
    """Normalise a single image, a batch tensor/array, or a sequence of images into RGB PIL images."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency of the package
        torch = None
    if torch is not None and isinstance(images, torch.Tensor):
        arr = images.detach().float().cpu().numpy() if images.is_floating_point() else images.cpu().numpy()
        if arr.ndim == 4:
            if arr.shape[0] == 0:
                raise ImageInputError("images: empty batch (0 images)")
            return [_array_to_pil(a, f"image {i}") for i, a in enumerate(arr)]
        return [_array_to_pil(arr, "image 0")]
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            if images.shape[0] == 0:
                raise ImageInputError("images: empty batch (0 images)")
            return [_array_to_pil(a, f"image {i}") for i, a in enumerate(images)]
        return [_array_to_pil(images, "image 0")]
    if isinstance(images, (Image.Image, str, os.PathLike)):
        images = [images]
    if not isinstance(images, Sequence) or isinstance(images, (bytes, bytearray)):
        raise ImageInputError(f"images: expected images or a list of images, got {type(images).__name__}")
    out = []
    for i, item in enumerate(images):
        name = f"image {i}"
        if isinstance(item, Image.Image):
            out.append(_pil_to_rgb(item, name))
        elif isinstance(item, (str, os.PathLike)):
            out.append(load_image_file(item))
        elif isinstance(item, np.ndarray):
            out.append(_array_to_pil(item, name))
        elif torch is not None and isinstance(item, torch.Tensor):
            arr = item.detach().float().cpu().numpy() if item.is_floating_point() else item.cpu().numpy()
            if arr.ndim == 4 and arr.shape[0] == 1:
                arr = arr[0]
            out.append(_array_to_pil(arr, name))
        else:
            raise ImageInputError(f"{name}: unsupported image type {type(item).__name__}")
    if not out:
        raise ImageInputError("images: empty list (0 images)")
    return out
