"""The shapes-world pixel oracle: read a prompt's relations, find each object by colour, judge each relation.

Objects are found by hue, so other shades of the four colours (crimson, navy, lime, gold...), mild noise, blur
and off-white backgrounds do not matter: the image is median filtered, the background colour is estimated from
the border, pixels far from it and saturated enough are sorted into red / yellow / green / blue by hue (hues in
between, e.g. orange or purple, belong to none), thin specks are opened away, and the largest connected blob of
a colour is the object. A colour with no blob of a minimum area is missing and all its relations fail.

A relation is judged on box centres against the objects' size: "A left of B" holds when B's centre lies right
of A's by more than a quarter of their summed widths (likewise vertically), a margin that rendered scenes keep
by construction (clearly true or clearly false) and generated images must respect to count.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from .relations import Extent

COLORS = ("red", "green", "blue", "yellow")
SHAPES = ("circle", "square", "triangle")
# Hue ranges in degrees; the gaps (orange, lime-yellow, cyan, purple) are deliberately nobody's.
HUES = {"red": ((330, 360), (0, 22)), "yellow": ((38, 70),), "green": ((75, 165),), "blue": ((185, 262),)}
MIN_SATURATION = 0.25
MIN_VALUE = 0.15
MIN_BACKGROUND_DISTANCE = 50.0  # RGB distance from the estimated background
MIN_AREA_FRACTION = 0.0015
MIN_AREA_PIXELS = 12
ANALYSIS_MAX_SIDE = 256
RELATION_MARGIN = 0.25

_PHRASES = {
    "left_of": ("to the left of", "on the left side of", "left of"),
    "right_of": ("to the right of", "on the right side of", "right of"),
    "above": ("above", "positioned above", "higher up than"),
    "below": ("below", "positioned below", "lower down than"),
}
_NP = r"(?:a|an|the)\s+(red|green|blue|yellow)\s+(circle|square|triangle)"
_REL = "|".join(re.escape(p) for p in sorted((p for ps in _PHRASES.values() for p in ps), key=len, reverse=True))
_CLAUSE = re.compile(rf"(?:there\s+is\s+)?{_NP}\s+(?:(?:is|sits|lies)\s+)?({_REL})\s+{_NP}", re.IGNORECASE)
_SPLIT = re.compile(r"[.;]|,\s*(?:and\s+)?|\s+and\s+", re.IGNORECASE)
_PREDICATE_OF = {p: pred for pred, ps in _PHRASES.items() for p in ps}


class PromptParseError(ValueError):
    """A prompt the shapes oracle cannot read."""


@dataclass(frozen=True)
class ParsedRelation:
    text: str
    subject: tuple[str, str]  # (colour, shape)
    predicate: str
    object: tuple[str, str]


def parse_prompt(prompt: str) -> list[ParsedRelation]:
    """The relations of a shapes prompt in the plain form ("a red circle to the left of a blue square, and ...")."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise PromptParseError("prompt is empty")
    relations = []
    for clause in (c.strip() for c in _SPLIT.split(prompt)):
        if not clause:
            continue
        m = _CLAUSE.fullmatch(clause)
        if m is None:
            raise PromptParseError(
                f"cannot read clause {clause!r} of prompt {prompt!r}: the shapes oracle reads clauses like "
                f"'a red circle to the left of a blue square' (colours {', '.join(COLORS)}; shapes "
                f"{', '.join(SHAPES)}; relations left of, right of, above, below)")
        c1, s1, phrase, c2, s2 = (g.lower() for g in m.groups())
        relations.append(ParsedRelation(clause, (c1, s1), _PREDICATE_OF[phrase], (c2, s2)))
    if not relations:
        raise PromptParseError(f"prompt {prompt!r} states no relation")
    shape_of: dict[str, str] = {}
    for rel in relations:
        for color, shape in (rel.subject, rel.object):
            if shape_of.setdefault(color, shape) != shape:
                raise PromptParseError(f"prompt {prompt!r} names two {color} objects ({shape_of[color]}, {shape}); "
                                       "the shapes oracle identifies objects by colour, so colours must be distinct")
        if rel.subject[0] == rel.object[0]:
            raise PromptParseError(f"clause {rel.text!r} relates an object to itself")
    return relations


@dataclass(frozen=True)
class Blob(Extent):
    area: int
    x0: float
    y0: float
    x1: float
    y1: float


def _label_runs(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components, labelled run by run (fast in Python: one union per touching pair of runs).
    Returns a label image (0 = background, 1..n) and n."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)  # row-major order, so starts and ends pair up
    _, ends = np.nonzero(edges == -1)
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs = list(zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True))
    prev: list[int] = []
    cur: list[int] = []
    row = -1
    for idx, (y, s, e) in enumerate(runs):
        if y != row:
            prev, cur = (cur if y == row + 1 else []), []
            row = y
        for j in prev:
            _, ps, pe = runs[j]
            if ps <= e and s <= pe:  # touching, diagonals included
                a, b = find(idx), find(j)
                if a != b:
                    parent[a] = b
        cur.append(idx)
    labels = np.zeros(mask.shape, dtype=np.int32)
    ids: dict[int, int] = {}
    for idx, (y, s, e) in enumerate(runs):
        labels[y, s:e] = ids.setdefault(find(idx), len(ids) + 1)
    return labels, len(ids)


def _object_blob(mask: np.ndarray, core: np.ndarray) -> Blob | None:
    """The component of `mask` holding the most of `core` (the mask opened), measured on the whole component:
    opening decides which blob is the object (specks and thin lines have no core), the unopened pixels give its
    true extent (opening would shave off a small triangle's tip)."""
    labels, n = _label_runs(mask)
    if n == 0:
        return None
    core_area = np.bincount(labels[core], minlength=n + 1)
    core_area[0] = 0
    best = int(core_area.argmax())
    if core_area[best] == 0:
        return None
    ys, xs = np.nonzero(labels == best)
    return Blob(int(ys.size), int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def _open(mask: np.ndarray) -> np.ndarray:
    """3x3 binary opening: removes specks and one- or two-pixel lines, keeps solid shapes."""
    eroded = mask.copy()
    eroded[1:, :] &= mask[:-1, :]
    eroded[:-1, :] &= mask[1:, :]
    eroded[0, :] = eroded[-1, :] = False
    rows = eroded.copy()
    eroded[:, 1:] &= rows[:, :-1]
    eroded[:, :-1] &= rows[:, 1:]
    eroded[:, 0] = eroded[:, -1] = False
    dilated = eroded.copy()
    dilated[1:, :] |= eroded[:-1, :]
    dilated[:-1, :] |= eroded[1:, :]
    cols = dilated.copy()
    dilated[:, 1:] |= cols[:, :-1]
    dilated[:, :-1] |= cols[:, 1:]
    return dilated & mask


def _hue_mask(hue_deg: np.ndarray, color: str) -> np.ndarray:
    m = np.zeros(hue_deg.shape, dtype=bool)
    for lo, hi in HUES[color]:
        m |= (hue_deg >= lo) & (hue_deg < hi)
    return m


def analysis_size(width: int, height: int) -> tuple[int, int]:
    """The size a picture is analysed at (its blobs' pixel units): at most ANALYSIS_MAX_SIDE a side."""
    if max(width, height) <= ANALYSIS_MAX_SIDE:
        return width, height
    scale = ANALYSIS_MAX_SIDE / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _colour_masks(image, colors) -> tuple[dict[str, np.ndarray], float]:
    """Each colour's foreground mask in the analysed image (median-filtered, at most ANALYSIS_MAX_SIDE a side) and
    the smallest area an object may have there."""
    from training.common.images import load_image_file, to_pil_list

    if isinstance(image, Image.Image) and image.mode == "RGB":
        img = image
    elif isinstance(image, (str, os.PathLike)):
        img = load_image_file(image)  # no torch import for files
    else:
        img = to_pil_list(image)[0]
    if analysis_size(*img.size) != img.size:
        img = img.resize(analysis_size(*img.size), Image.BOX)
    img = img.filter(ImageFilter.MedianFilter(3))
    rgb = np.asarray(img, dtype=np.float32)
    hsv = np.asarray(img.convert("HSV"), dtype=np.float32)
    border = np.concatenate([rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3), rgb[:, :2].reshape(-1, 3),
                             rgb[:, -2:].reshape(-1, 3)])
    background = np.median(border, axis=0)
    foreground = ((np.linalg.norm(rgb - background, axis=2) > MIN_BACKGROUND_DISTANCE)
                  & (hsv[..., 1] >= MIN_SATURATION * 255) & (hsv[..., 2] >= MIN_VALUE * 255))
    hue = hsv[..., 0] * (360.0 / 255.0)
    min_area = max(MIN_AREA_PIXELS, MIN_AREA_FRACTION * rgb.shape[0] * rgb.shape[1])
    masks = {}
    for color in colors:
        if color not in HUES:
            raise ValueError(f"the shapes oracle knows colours {', '.join(COLORS)}, not {color!r}")
        masks[color] = foreground & _hue_mask(hue, color)
    return masks, min_area


def analyse_objects(image, colors=COLORS) -> dict[str, tuple[Blob | None, float]]:
    """Per colour, in one pass over the picture: its object (its largest blob, or None when missing) and its purity,
    the share of the colour's pixels that lie in that blob (1.0: one clean object; low: the colour is smeared,
    striped or drawn several times; 0.0: no object)."""
    masks, min_area = _colour_masks(image, colors)
    out: dict[str, tuple[Blob | None, float]] = {}
    for color, mask in masks.items():
        blob = _object_blob(mask, _open(mask))
        if blob is None or blob.area < min_area:
            out[color] = (None, 0.0)
        else:
            out[color] = (blob, blob.area / max(1, int(mask.sum())))
    return out


def find_objects(image, colors=COLORS) -> dict[str, Blob | None]:
    """Each colour's object (its largest blob, in pixels of the analysed image) or None when missing."""
    return {color: blob for color, (blob, _) in analyse_objects(image, colors).items()}


def colour_purity(image, colors=COLORS) -> dict[str, float]:
    """Per colour, the share of its pixels that lie in its object's blob (analyse_objects). Stricter than
    find_objects, which only needs a large enough blob: a verifier for generated pictures that are to serve as
    positive examples."""
    return {color: purity for color, (_, purity) in analyse_objects(image, colors).items()}


def relation_holds(predicate: str, a: Blob | None, b: Blob | None) -> bool:
    if a is None or b is None:
        return False
    if predicate == "left_of":
        return b.cx - a.cx > RELATION_MARGIN * (a.w + b.w)
    if predicate == "right_of":
        return a.cx - b.cx > RELATION_MARGIN * (a.w + b.w)
    if predicate == "above":
        return b.cy - a.cy > RELATION_MARGIN * (a.h + b.h)
    if predicate == "below":
        return a.cy - b.cy > RELATION_MARGIN * (a.h + b.h)
    raise ValueError(f"the shapes oracle judges left_of, right_of, above, below, not {predicate!r}")


@dataclass(frozen=True)
class Verdict:
    relations: tuple[tuple[str, bool], ...]  # (clause text, holds)

    @property
    def all(self) -> bool:
        return all(h for _, h in self.relations)

    @property
    def holds(self) -> list[bool]:
        return [h for _, h in self.relations]

    def to_json(self) -> dict:
        return {"relations": [{"text": t, "holds": h} for t, h in self.relations], "all": self.all}


def judge_objects(objects: dict[str, Blob | None], prompt: str | list[ParsedRelation]) -> Verdict:
    relations = parse_prompt(prompt) if isinstance(prompt, str) else prompt
    return Verdict(tuple((r.text, relation_holds(r.predicate, objects.get(r.subject[0]), objects.get(r.object[0])))
                         for r in relations))


def judge(image, prompt: str) -> Verdict:
    """Per relation of `prompt`, whether it holds in `image` (a PIL image, array, tensor or path)."""
    relations = parse_prompt(prompt)
    colors = sorted({c for r in relations for c in (r.subject[0], r.object[0])})
    return judge_objects(find_objects(image, colors), relations)
