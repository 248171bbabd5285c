"""Edit scenes: two to four flat coloured shapes (distinct colours) in boxes on a plain background.

A scene is a tuple of `Shape`s with boxes in normalised coordinates (x right, y down, 0..1). Shapes never touch
(a clear gap keeps every shape's pixels its own, so the pixel oracle sees each whole). `render` draws exactly what
the shapes world draws (same palette and background); a shape may carry a second colour on its right half, which
is how a half-done recolouring looks. `changed_regions` lists the boxes where two scenes differ: the edit region.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

from ..shapes_render import BACKGROUND_RGB, SHAPE_RGB

COLORS = ("red", "green", "blue", "yellow")
SHAPES = ("circle", "square", "triangle")
SIZE_RANGE = (0.18, 0.26)  # box side, as in the shapes world
MARGIN = 0.04  # from the canvas edge
GAP = 0.04  # between two shapes' boxes


@dataclass(frozen=True)
class Shape:
    color: str
    shape: str
    x0: float
    y0: float
    side: float
    right_color: str | None = None  # a second colour on the right half (a half-done recolouring)

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x0 + self.side, self.y0 + self.side)

    @property
    def cx(self) -> float:
        return self.x0 + self.side / 2

    @property
    def cy(self) -> float:
        return self.y0 + self.side / 2

    def moved_to(self, cx: float, cy: float) -> Shape:
        return replace(self, x0=round(cx - self.side / 2, 4), y0=round(cy - self.side / 2, 4))

    def to_dict(self) -> dict:
        d = {"color": self.color, "shape": self.shape, "box": [round(v, 4) for v in self.box]}
        if self.right_color:
            d["right_color"] = self.right_color
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Shape:
        x0, y0, x1, _ = d["box"]
        return cls(d["color"], d["shape"], x0, y0, x1 - x0, d.get("right_color"))


Scene = tuple[Shape, ...]


def fits(shape: Shape, others: Scene | list[Shape]) -> bool:
    """Inside the canvas margin and clear of every other shape by GAP."""
    x0, y0, x1, y1 = shape.box
    if x0 < MARGIN - 1e-9 or y0 < MARGIN - 1e-9 or x1 > 1 - MARGIN + 1e-9 or y1 > 1 - MARGIN + 1e-9:
        return False
    for o in others:
        a0, b0, a1, b1 = o.box
        if x1 + GAP > a0 and a1 + GAP > x0 and y1 + GAP > b0 and b1 + GAP > y0:
            return False
    return True


def random_shape(color: str, shape: str, others, rng: random.Random, tries: int = 60) -> Shape | None:
    side = round(rng.uniform(*SIZE_RANGE), 4)
    for _ in range(tries):
        s = Shape(color, shape, round(rng.uniform(MARGIN, 1 - MARGIN - side), 4),
                  round(rng.uniform(MARGIN, 1 - MARGIN - side), 4), side)
        if fits(s, others):
            return s
    return None


def sample_scene(rng: random.Random, n_objects: tuple[int, int] = (2, 3)) -> Scene:
    """A random source scene: 2-3 shapes of distinct colours, none touching."""
    for _ in range(200):
        n = rng.randint(*n_objects)
        colors = rng.sample(COLORS, n)
        placed: list[Shape] = []
        for c in colors:
            s = random_shape(c, rng.choice(SHAPES), placed, rng)
            if s is None:
                break
            placed.append(s)
        if len(placed) == n:
            return tuple(placed)
    raise RuntimeError("could not sample an edit scene in 200 tries")


def by_color(scene: Scene) -> dict[str, Shape]:
    return {s.color: s for s in scene}


def free_colors(scene: Scene) -> list[str]:
    used = {s.color for s in scene}
    return [c for c in COLORS if c not in used]


def _draw(draw: ImageDraw.ImageDraw, shape: str, xy: tuple[int, int, int, int], fill) -> None:
    x0, y0, x1, y1 = xy
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    else:
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)


def render(scene: Scene, size: int = 64) -> Image.Image:
    """The scene as a `size` x `size` RGB image, drawn like the shapes world (triangles point up)."""
    img = Image.new("RGB", (size, size), BACKGROUND_RGB)
    draw = ImageDraw.Draw(img)
    for s in scene:
        x0, y0, x1, y1 = (round(v * size) for v in s.box)
        xy = (x0, y0, x1 - 1, y1 - 1)
        _draw(draw, s.shape, xy, SHAPE_RGB[s.color])
        if s.right_color:
            half = Image.new("RGB", (size, size), BACKGROUND_RGB)
            mask = Image.new("L", (size, size), 0)
            _draw(ImageDraw.Draw(mask), s.shape, xy, 255)
            ImageDraw.Draw(mask).rectangle([0, 0, (x0 + x1) // 2 - 1, size], fill=0)
            half.paste(SHAPE_RGB[s.right_color], mask=mask)
            img.paste(half, mask=mask)
    return img


def changed_regions(before: Scene, after: Scene) -> list[list[float]]:
    """Boxes (x0, y0, x1, y1 in 0..1) where `after` differs from `before`: a moved shape's old and new box, a
    removed, added, recoloured or resized shape's box. Sorted, so equal scenes give []."""
    old, new = by_color(before), by_color(after)
    regions = []
    for c in sorted(set(old) | set(new)):
        a, b = old.get(c), new.get(c)
        if a is not None and b is not None and a == b:
            continue
        for s in (a, b):
            if s is not None and [round(v, 4) for v in s.box] not in regions:
                regions.append([round(v, 4) for v in s.box])
    # a recolouring is the same box under two colours: keep it once
    return sorted(regions)


def scene_to_json(scene: Scene) -> list[dict]:
    return [s.to_dict() for s in scene]


def scene_from_json(data: list[dict]) -> Scene:
    return tuple(Shape.from_dict(d) for d in data)
