"""Render a shapes-world scene exactly with PIL: flat coloured shapes on a plain light background."""

from __future__ import annotations

from PIL import Image, ImageDraw

from .scene import Scene

SHAPE_RGB = {"red": (220, 40, 40), "green": (40, 165, 70), "blue": (40, 85, 220), "yellow": (240, 200, 30)}
BACKGROUND_RGB = (246, 245, 240)


def render_shapes(scene: Scene, size: int = 64, background: tuple[int, int, int] = BACKGROUND_RGB,
                  palette: dict[str, tuple[int, int, int]] | None = None) -> Image.Image:
    """A `size` x `size` RGB image of the scene; each shape fills its layout box (triangles point up).

    `palette` overrides colours (other shades of the four), e.g. to test the oracle's robustness."""
    palette = {**SHAPE_RGB, **(palette or {})}
    if scene.world != "shapes":
        raise ValueError(f"render_shapes draws shapes-world scenes only, got a {scene.world!r} scene")
    if size < 16:
        raise ValueError(f"canvas size must be at least 16 pixels, got {size}")
    img = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        if obj.color not in palette:
            raise ValueError(f"shapes world has no colour {obj.color!r}; expected one of {', '.join(SHAPE_RGB)}")
        b = obj.box
        x0, y0 = round(b.x0 * size), round(b.y0 * size)
        x1, y1 = round(b.x1 * size) - 1, round(b.y1 * size) - 1
        fill = palette[obj.color]
        if obj.category == "circle":
            draw.ellipse([x0, y0, x1, y1], fill=fill)
        elif obj.category == "square":
            draw.rectangle([x0, y0, x1, y1], fill=fill)
        elif obj.category == "triangle":
            draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
        else:
            raise ValueError(f"shapes world has no shape {obj.category!r}; expected circle, square or triangle")
    return img
