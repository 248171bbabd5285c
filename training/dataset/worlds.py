"""The two worlds scenes are sampled from: the open "general" world and the closed "shapes" world.

The general world is for real text-to-image generators (everyday objects, attributes, counts, settings, every
2D and 3D relation). The shapes world is the offline test bed: 2-3 coloured shapes of distinct colours on a
plain background, related only by left of / right of / above / below, rendered exactly and judged by pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .relations import GAP, PREDICATES, SAME_DEPTH, Box, overlap_area


@dataclass(frozen=True)
class Category:
    name: str
    plural: str
    size: tuple[float, float]  # box width range (normalised)
    aspect: float = 1.0  # height / width
    support: bool = False  # things can stand on top of it
    container: bool = False  # things can be inside it
    materials: tuple[str, ...] = ()


def _c(name, plural, size, aspect=1.0, support=False, container=False, materials=()):
    return Category(name, plural, size, aspect, support, container, tuple(materials))


SMALL, MEDIUM, LARGE = (0.07, 0.13), (0.14, 0.24), (0.28, 0.42)
GENERAL_CATEGORIES = (
    _c("cup", "cups", SMALL, 1.1, materials=("ceramic", "glass", "paper")),
    _c("apple", "apples", SMALL),
    _c("ball", "balls", SMALL, materials=("rubber", "leather")),
    _c("book", "books", SMALL, 0.5, support=True),
    _c("bird", "birds", SMALL, 0.9),
    _c("candle", "candles", SMALL, 1.6, materials=("wax",)),
    _c("teddy bear", "teddy bears", SMALL, 1.2),
    _c("vase", "vases", SMALL, 1.6, container=True, materials=("glass", "ceramic")),
    _c("bowl", "bowls", MEDIUM, 0.45, container=True, materials=("ceramic", "wooden", "glass")),
    _c("cat", "cats", MEDIUM, 0.8),
    _c("dog", "dogs", MEDIUM, 0.8),
    _c("lamp", "lamps", MEDIUM, 1.6, materials=("metal",)),
    _c("backpack", "backpacks", MEDIUM, 1.2, container=True, materials=("leather", "canvas")),
    _c("basket", "baskets", MEDIUM, 0.7, container=True, support=True, materials=("wicker",)),
    _c("box", "boxes", MEDIUM, 0.8, container=True, support=True, materials=("wooden", "cardboard", "metal")),
    _c("chair", "chairs", MEDIUM, 1.4, support=True, materials=("wooden", "metal", "plastic")),
    _c("potted plant", "potted plants", MEDIUM, 1.3),
    _c("suitcase", "suitcases", MEDIUM, 0.8, container=True, support=True, materials=("leather",)),
    _c("table", "tables", LARGE, 0.6, support=True, materials=("wooden", "glass", "metal")),
    _c("sofa", "sofas", LARGE, 0.5, support=True, materials=("leather", "velvet")),
    _c("car", "cars", LARGE, 0.5, support=True),
    _c("bench", "benches", LARGE, 0.4, support=True, materials=("wooden", "stone", "metal")),
    _c("bicycle", "bicycles", LARGE, 0.6),
    _c("shelf", "shelves", LARGE, 0.8, support=True, container=True, materials=("wooden", "metal")),
)
GENERAL_COLORS = ("red", "green", "blue", "yellow", "white", "black", "orange", "purple", "pink", "brown", "gray")
SIZES = ("small", "large", "tiny", "big")
SETTINGS = (
    "a sunny park", "a cozy living room", "a bright kitchen", "a quiet street", "a sandy beach",
    "a modern office", "a forest clearing", "a photo studio with a plain backdrop", "a garden", "a classroom",
    "a snowy yard", "a wooden porch",
)

SHAPE_CATEGORIES = tuple(_c(n, n + "s", (0.18, 0.26)) for n in ("circle", "square", "triangle"))
SHAPE_COLORS = ("red", "green", "blue", "yellow")
SHAPE_PREDICATES = ("left_of", "right_of", "above", "below")


@dataclass(frozen=True)
class WorldSpec:
    name: str
    categories: tuple[Category, ...]
    colors: tuple[str, ...]
    predicates: tuple[str, ...]
    n_objects: tuple[int, int]
    max_relations: int
    distinct_colors: bool
    margin: float
    attributes: bool  # size/material adjectives and counts above one
    settings: tuple[str, ...] = field(default=())

    def category(self, name: str) -> Category:
        for c in self.categories:
            if c.name == name:
                return c
        raise KeyError(f"world {self.name!r} has no object category {name!r}")

    def plausible(self, boxes: list[Box]) -> bool:
        """No box leaves the canvas and no two boxes overlap unless the picture can explain it."""
        m = self.margin - 1e-9
        for b in boxes:
            if b.x0 < m or b.y0 < m or b.x1 > 1 - m or b.y1 > 1 - m or not 0 <= b.z <= 1:
                return False
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                if self.name == "shapes":
                    # Shapes never touch: each keeps its own pixels, so the oracle sees its whole extent.
                    if a.x1 + GAP / 2 > b.x0 and b.x1 + GAP / 2 > a.x0 and a.y1 + GAP / 2 > b.y0 and b.y1 + GAP / 2 > a.y0:
                        return False
                    continue
                ov = overlap_area(a, b)
                if ov == 0:
                    continue
                small, large = (a, b) if a.area <= b.area else (b, a)
                contained = (large.x0 <= small.x0 and small.x1 <= large.x1 and large.y0 <= small.y0
                             and small.y1 <= large.y1 and abs(a.z - b.z) <= SAME_DEPTH)
                far, near = (a, b) if a.z > b.z else (b, a)
                occluded = abs(a.z - b.z) >= 0.2 and ov / far.area <= 0.7
                if not (contained or occluded):
                    return False
        return True


SHAPES = WorldSpec("shapes", SHAPE_CATEGORIES, SHAPE_COLORS, SHAPE_PREDICATES, (2, 3), 3, True, 0.04, False)
GENERAL = WorldSpec("general", GENERAL_CATEGORIES, GENERAL_COLORS, PREDICATES, (2, 6), 7, False, 0.02, True,
                    SETTINGS)
WORLDS = {"shapes": SHAPES, "general": GENERAL}


def get_world(name: str) -> WorldSpec:
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; expected one of: {', '.join(WORLDS)}")
    return WORLDS[name]
