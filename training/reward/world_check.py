"""Is this (image, prompt) inside the world a small scorer was trained on? A cheap test, run beside scoring.

The built-in `shapes` scorer (coords backbone) knows a few words and has only seen flat coloured shapes on a
plain light background; it still returns a number for a photo or for "a girl in a pink dress", and that number
means nothing. This module says so: words outside the scorer's vocabulary, and images far from the shapes world.
The image test looks at a 32 x 32 thumbnail: the share of pixels that are background or one of the four shape
hues, and how flat the picture is (shapes are flat areas with sharp edges; photos are textured everywhere).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

THUMB = 32
MIN_WORLD_PIXELS = 0.9  # share of pixels that are background or a shape colour (renders >= 0.98, photo 0.77)
MAX_TEXTURE = 0.04  # mean |difference| of neighbouring thumbnail pixels, 0..1 (renders <= 0.025, photo 0.05)
# Hue ranges (degrees) of the four shape colours, as the pixel oracle reads them (dataset/oracle.py), widened
# for the colour blend a thumbnail makes at edges.
HUES = ((330, 360), (0, 30), (35, 75), (75, 170), (180, 265))


def _hue_sat_val(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mx, mn = rgb.max(-1), rgb.min(-1)
    delta = mx - mn
    sat = np.where(mx > 0, delta / np.maximum(mx, 1e-6), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(delta, 1e-6)
    hue = np.select([mx == r, mx == g], [((g - b) / safe) % 6, (b - r) / safe + 2], (r - g) / safe + 4) * 60
    return hue, sat, mx


def image_problem(image: Image.Image) -> str:
    """'' when the image looks like a shapes-world picture, else a short reason."""
    thumb = np.asarray(image.convert("RGB").resize((THUMB, THUMB), Image.BOX), dtype=np.float32) / 255.0
    border = np.concatenate([thumb[0], thumb[-1], thumb[:, 0], thumb[:, -1]])
    background = np.median(border, axis=0)
    near_background = np.linalg.norm(thumb - background, axis=-1) < 0.16
    hue, sat, val = _hue_sat_val(thumb)
    shape_hue = np.zeros_like(near_background)
    for lo, hi in HUES:
        shape_hue |= (hue >= lo) & (hue < hi)
    world = near_background | (shape_hue & (sat > 0.3) & (val > 0.35))
    texture = float(np.abs(np.diff(thumb, axis=0)).mean() + np.abs(np.diff(thumb, axis=1)).mean()) / 2
    share = float(world.mean())
    if background.mean() < 0.6:
        return f"its background is dark ({background.mean():.2f} of white), the shapes world's is light"
    if share < MIN_WORLD_PIXELS:
        return f"only {share:.0%} of it is plain background or a shape colour"
    if texture > MAX_TEXTURE:
        return f"it is textured like a photo (texture {texture:.3f}, shapes pictures are flat)"
    return ""


def unknown_words(words: list[str], vocabulary: set[str]) -> list[str]:
    seen: list[str] = []
    for w in words:
        if w not in vocabulary and w not in seen:
            seen.append(w)
    return seen


def world_warnings(images: list[Image.Image], prompts: list[str], vocabulary: set[str], split_words,
                   world: str = "shapes") -> list[str]:
    """One warning per image ('' when it and its prompt are inside the scorer's world)."""
    out, by_prompt = [], {}
    for image, prompt in zip(images, prompts, strict=True):
        if prompt not in by_prompt:
            by_prompt[prompt] = unknown_words(split_words(prompt), vocabulary)
        parts = []
        if by_prompt[prompt]:
            parts.append(f"the prompt has words the {world} scorer does not know ({', '.join(by_prompt[prompt][:6])})")
        problem = image_problem(image)
        if problem:
            parts.append(f"the image is far from the {world} world: {problem}")
        out.append("; ".join(parts))
    return out
