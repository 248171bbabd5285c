"""Score text and score badges drawn onto a copy of the images, for the nodes' previews.

The frontend extension draws live badges from the UI payload; the badge baked into the preview pixels, and the
score record in each preview PNG's metadata, are what remain when the picture is saved, shared or opened without
the extension. A score that means little (a warning from the scorer) says so in all three.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from .scoring import warning_flag

PNG_KEY = "spatialscore"  # the preview PNG's text chunk: the image's badge record as JSON
BADGE_FILL = (0, 0, 0, 170)
WARNED_FILL = (160, 90, 0, 215)  # amber: this score means little (the frontend's badge has the same colour)


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


def badge_payload(mean, std, indices=None, prompts=None, utility=None, warnings=None) -> list[dict]:
    """The per-image records the frontend badge extension reads from the node's UI output (JSON-safe); `warnings`
    (in the same order, '' for none) add the scorer's `warning` and the badge's short `flag`."""
    rows = []
    for pos, (m, s) in enumerate(zip(_floats(mean), _floats(std), strict=True)):
        row = {"position": pos, "index": int(indices[pos]) if indices is not None else pos,
               "mean": m, "std": s}
        if utility is not None:
            row["utility"] = float(utility[pos])
        if prompts is not None:
            row["prompt"] = prompts[pos]
        if warnings is not None and warnings[pos]:
            row["warning"] = warnings[pos]
            row["flag"] = warning_flag(warnings[pos])
        rows.append(row)
    return rows


def badge_label(mean: float, std: float, warning: str = "") -> str:
    """A baked badge: the score, and under it the warning's short form when the score means little."""
    flag = warning_flag(warning)
    return format_score(mean, std) + (f"\n{flag}" if flag else "")


def save_preview_pngs(images: torch.Tensor, rows: list[dict], folder: str | Path, stem: str) -> list[str]:
    """Each image as <folder>/<stem>_<i>.png carrying its badge record (warning included) in the PNG text chunk
    `spatialscore`; returns the file names."""
    if len(rows) != images.shape[0]:
        raise ValueError(f"{len(rows)} badge records for {images.shape[0]} images")
    Path(folder).mkdir(parents=True, exist_ok=True)
    names = []
    for i, (img, row) in enumerate(zip(images, rows, strict=True)):
        arr = (img[..., :3].detach().float().cpu().clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
        info = PngInfo()
        info.add_text(PNG_KEY, json.dumps(row))
        name = f"{stem}_{i:05d}.png"
        Image.fromarray(arr, mode="RGB").save(Path(folder) / name, pnginfo=info, compress_level=1)
        names.append(name)
    return names


def draw_badges(images: torch.Tensor, labels: list[str], warned: list[bool] | None = None) -> torch.Tensor:
    """A copy of an IMAGE batch [B,H,W,3] (float 0..1) with `labels[i]` drawn in a box at the top left: dark, or
    amber where `warned[i]` (a score that means little)."""
    if images.ndim != 4 or images.shape[-1] not in (3, 4):
        raise ValueError(f"images: expected an IMAGE batch [B,H,W,3], got shape {tuple(images.shape)}")
    if len(labels) != images.shape[0]:
        raise ValueError(f"{len(labels)} labels for {images.shape[0]} images")
    warned = warned if warned is not None else [False] * len(labels)
    out = []
    for img, label, warn in zip(images, labels, warned, strict=True):
        arr = (img[..., :3].detach().float().cpu().clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
        pil = Image.fromarray(arr, mode="RGB")
        draw_badge(pil, label, WARNED_FILL if warn else BADGE_FILL)
        out.append(torch.from_numpy(np.asarray(pil).astype(np.float32) / 255.0))
    return torch.stack(out)


def draw_badge(pil: Image.Image, label: str, fill: tuple[int, int, int, int] = BADGE_FILL) -> None:
    w, h = pil.size
    size = max(8, min(w, h) // 14)
    font = _font(size)
    draw = ImageDraw.Draw(pil, "RGBA")
    pad = max(2, size // 4)
    left, top, right, bottom = draw.textbbox((pad, pad), label, font=font)
    draw.rectangle((0, 0, min(w, right + pad), min(h, bottom + pad)), fill=fill)
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
