"""A contact sheet of a dataset's pairs (PNG): perfect image, perturbed image, and the prompts with the changes."""

from __future__ import annotations

import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from training.common.atomic import atomic_path
from training.common.images import load_image_file

THUMB = 160
TEXT_W = 420
ROW_H = THUMB + 12


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one fixed-size default font
        return ImageFont.load_default()


def preview_sheet(folder: str | Path, rows: list[dict], out: str | Path) -> Path:
    """Write `out`: one line per row with its two images side by side and what was changed."""
    folder, out = Path(folder), Path(out)
    if not rows:
        raise ValueError("no pairs to preview")
    sheet = Image.new("RGB", (2 * THUMB + TEXT_W + 24, ROW_H * len(rows) + 8), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(13)
    for i, row in enumerate(rows):
        y = 6 + i * ROW_H
        for j, key in enumerate(("chosen", "rejected")):
            img = load_image_file(folder / row[key]).resize((THUMB, THUMB), Image.NEAREST)
            sheet.paste(img, (6 + j * (THUMB + 6), y))
            draw.rectangle([6 + j * (THUMB + 6) - 1, y - 1, 6 + j * (THUMB + 6) + THUMB, y + THUMB],
                           outline=(40, 160, 60) if key == "chosen" else (200, 50, 50), width=2)
        changes = "; ".join(f"{c['op']}: {c['before_text']} -> {c['after_text']}" for c in row.get("changed", []))
        text = (f"{row['id']} ({row.get('split')}, {row.get('generator')})\n"
                + "\n".join(textwrap.wrap("prompt: " + row["prompt"], 60)[:4]) + "\n"
                + "\n".join(textwrap.wrap("changed " + changes, 60)[:4]))
        draw.multiline_text((2 * THUMB + 20, y), text, fill="black", font=font, spacing=2)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
