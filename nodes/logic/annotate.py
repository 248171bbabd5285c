"""Score text and score badges drawn onto a copy of the images, for the nodes' previews.

The frontend extension draws live badges from the UI payload; the badge baked into the preview pixels is what
remains when the picture is saved, shared or opened without the extension.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def format_score(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def score_lines(mean, std, indices=None, prompts=None) -> list[str]:
    """One line per image for the UI text: rank or index, score, uncertainty, prompt."""
    lines = []
    for pos, (m, s) in enumerate(zip(_floats(mean), _floats(std), strict=True)):
        label = f"#{pos + 1} (image {int(indices[pos])})" if indices is not None else f"image {pos}"
        line = f"{label}: {format_score(m, s)}"
        if prompts is not None:
            line += f"  {prompts[pos]!r}"
        lines.append(line)
    return lines


def badge_payload(mean, std, indices=None, prompts=None, utility=None) -> list[dict]:
    """The per-image records the frontend badge extension reads from the node's UI output (JSON-safe)."""
    rows = []
    for pos, (m, s) in enumerate(zip(_floats(mean), _floats(std), strict=True)):
        row = {"position": pos, "index": int(indices[pos]) if indices is not None else pos,
               "mean": m, "std": s}
        if utility is not None:
            row["utility"] = float(utility[pos])
        if prompts is not None:
            row["prompt"] = prompts[pos]
        rows.append(row)
    return rows


def draw_badges(images: torch.Tensor, labels: list[str]) -> torch.Tensor:
    """A copy of an IMAGE batch [B,H,W,3] (float 0..1) with `labels[i]` drawn in a dark box at the top left."""
    if images.ndim != 4 or images.shape[-1] not in (3, 4):
        raise ValueError(f"images: expected an IMAGE batch [B,H,W,3], got shape {tuple(images.shape)}")
    if len(labels) != images.shape[0]:
        raise ValueError(f"{len(labels)} labels for {images.shape[0]} images")
    out = []
    for img, label in zip(images, labels, strict=True):
        arr = (img[..., :3].detach().float().cpu().clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
        pil = Image.fromarray(arr, mode="RGB")
        _draw_one(pil, label)
        out.append(torch.from_numpy(np.asarray(pil).astype(np.float32) / 255.0))
    return torch.stack(out)


def _draw_one(pil: Image.Image, label: str) -> None:
    w, h = pil.size
    size = max(8, min(w, h) // 14)
    font = _font(size)
    draw = ImageDraw.Draw(pil, "RGBA")
    pad = max(2, size // 4)
    left, top, right, bottom = draw.textbbox((pad, pad), label, font=font)
    draw.rectangle((0, 0, min(w, right + pad), min(h, bottom + pad)), fill=(0, 0, 0, 170))
    draw.text((pad, pad), label, font=font, fill=(255, 255, 255, 255))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)  # scalable when Pillow has FreeType
    except (TypeError, OSError):  # older Pillow or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _floats(values) -> list[float]:
    if isinstance(values, torch.Tensor):
        return [float(v) for v in values.flatten().tolist()]
    return [float(v) for v in values]
