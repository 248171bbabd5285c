"""Spatial relations as geometry: when a relation clearly holds, clearly fails, or is too close to call.

A scene's layout gives every object a box in normalised image coordinates (x right, y down, 0..1) and a depth
z (0 = nearest the camera). Each relation has a three-valued truth: True (clearly holds), False (clearly fails)
or None (ambiguous). Scenes state only clearly true relations and perturbations make relations clearly false,
so a renderer or a judge never has to decide a borderline case.

Placers do the inverse: they move one object so that a relation clearly holds, which is how scenes with
"on top of" or "partly hidden behind" are built and how perturbations find a layout for a changed prompt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

PREDICATES_2D = ("left_of", "right_of", "above", "below", "next_to", "between")
PREDICATES_3D = ("in_front_of", "behind", "on_top_of", "under", "inside", "partly_hidden_behind")
PREDICATES = PREDICATES_2D + PREDICATES_3D
ARITY = {p: 2 for p in PREDICATES} | {"between": 3}
INVERSE = {
    "left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above",
    "in_front_of": "behind", "behind": "in_front_of", "on_top_of": "under", "under": "on_top_of",
}
SYMMETRIC = frozenset({"next_to"})

GAP = 0.04  # clear separation between boxes for the 2D relations
DEPTH_GAP = 0.25  # clear depth difference for in front of / behind
TOUCH = 0.01  # "on top of": the bottom of one box lies on the top of the other
SAME_DEPTH = 0.1


class Extent:
    """Width, height and centre of anything with x0, y0, x1, y1 (a scene's Box, the pixel oracle's Blob)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def w(self) -> float:
        return self.x1 - self.x0

    @property
    def h(self) -> float:
        return self.y1 - self.y0

    @property
    def cx(self) -> float:
        return (self.x0 + self.x1) / 2

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass(frozen=True)
class Box(Extent):
    x0: float
    y0: float
    x1: float
    y1: float
    z: float = 0.5

    @property
    def area(self) -> float:
        return self.w * self.h

    def at(self, x0: float, y0: float, z: float | None = None) -> Box:
        """The same size box with its top-left corner at (x0, y0)."""
        return Box(x0, y0, x0 + self.w, y0 + self.h, self.z if z is None else z)

    def rounded(self, digits: int = 4) -> Box:
        return Box(*(round(v, digits) for v in (self.x0, self.y0, self.x1, self.y1, self.z)))


def overlap_area(a: Box, b: Box) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _left_of(a: Box, b: Box) -> bool | None:
    if a.x1 + GAP <= b.x0:
        return True
    if a.cx >= b.cx:
        return False
    return None


def _above(a: Box, b: Box) -> bool | None:
    if a.y1 + GAP <= b.y0:
        return True
    if a.cy >= b.cy:
        return False
    return None


def _next_to(a: Box, b: Box) -> bool | None:
    hgap = max(b.x0 - a.x1, a.x0 - b.x1)
    vov = (min(a.y1, b.y1) - max(a.y0, b.y0)) / min(a.h, b.h)
    dz = abs(a.z - b.z)
    if 0 <= hgap <= 0.08 and vov >= 0.5 and dz <= 0.15:
        return True
    if hgap >= 0.2 or hgap < -0.02 or vov <= 0 or dz >= 0.4:
        return False
    return None


def _between(a: Box, b: Box, c: Box) -> bool | None:
    if (_left_of(b, a) is True and _left_of(a, c) is True) or (_left_of(c, a) is True and _left_of(a, b) is True):
        return True
    if not (min(b.cx, c.cx) < a.cx < max(b.cx, c.cx)):
        return False
    return None


def _in_front_of(a: Box, b: Box) -> bool | None:
    if a.z + DEPTH_GAP <= b.z:
        return True
    if a.z >= b.z:
        return False
    return None


def _on_top_of(a: Box, b: Box) -> bool | None:
    dz = abs(a.z - b.z)
    if abs(a.y1 - b.y0) <= TOUCH and b.x0 <= a.cx <= b.x1 and dz <= SAME_DEPTH:
        return True
    if abs(a.y1 - b.y0) >= 0.05 or a.x1 <= b.x0 or a.x0 >= b.x1 or dz >= 0.3:
        return False
    return None


def _inside(a: Box, b: Box) -> bool | None:
    dz = abs(a.z - b.z)
    within = b.x0 <= a.x0 and a.x1 <= b.x1 and b.y0 <= a.y0 and a.y1 <= b.y1
    if within and dz <= SAME_DEPTH and a.area <= 0.5 * b.area:
        return True
    if not (b.x0 < a.cx < b.x1 and b.y0 < a.cy < b.y1) or dz >= 0.3 or a.area > b.area:
        return False
    return None


def _partly_hidden_behind(a: Box, b: Box) -> bool | None:
    hidden = overlap_area(a, b) / a.area
    if a.z >= b.z + DEPTH_GAP and 0.15 <= hidden <= 0.7:
        return True
    if a.z <= b.z or hidden == 0 or hidden >= 0.95:
        return False
    return None


def truth(predicate: str, boxes: list[Box]) -> bool | None:
    """Three-valued truth of `predicate(subject, object[, object2])` for boxes in that order."""
    a, b = boxes[0], boxes[1]
    if predicate == "left_of":
        return _left_of(a, b)
    if predicate == "right_of":
        return _left_of(b, a)
    if predicate == "above":
        return _above(a, b)
    if predicate == "below":
        return _above(b, a)
    if predicate == "next_to":
        return _next_to(a, b)
    if predicate == "between":
        return _between(a, b, boxes[2])
    if predicate == "in_front_of":
        return _in_front_of(a, b)
    if predicate == "behind":
        return _in_front_of(b, a)
    if predicate == "on_top_of":
        return _on_top_of(a, b)
    if predicate == "under":
        return _on_top_of(b, a)
    if predicate == "inside":
        return _inside(a, b)
    if predicate == "partly_hidden_behind":
        return _partly_hidden_behind(a, b)
    raise ValueError(f"unknown relation {predicate!r}; expected one of {', '.join(PREDICATES)}")


# ---------------------------------------------------------------- placers
def _uniform(rng: random.Random, lo: float, hi: float) -> float | None:
    return None if hi < lo else rng.uniform(lo, hi)


def place(predicate: str, subject: Box, others: list[Box], rng: random.Random, margin: float,
          roles: tuple[bool, bool] = (False, False)) -> Box | None:
    """A new box for `subject` (same size) that makes `predicate(subject, *others)` clearly true, or None.

    `roles` says whether the subject can carry things / hold things (support, container): "under" needs the
    subject to be a support. Whether the *object* is a support or container is the caller's check.
    """
    o = others[0]
    lo, hi = margin, 1 - margin
    w, h = subject.w, subject.h
    # Half the time keep the coordinate the relation does not constrain: fewer other relations get disturbed.
    y_any = subject.y0 if rng.random() < 0.5 else _uniform(rng, lo, hi - h)
    x_any = subject.x0 if rng.random() < 0.5 else _uniform(rng, lo, hi - w)
    if predicate in ("left_of", "right_of"):
        x = _uniform(rng, lo, o.x0 - GAP - w) if predicate == "left_of" else _uniform(rng, o.x1 + GAP, hi - w)
        return None if x is None or y_any is None else subject.at(x, y_any)
    if predicate in ("above", "below"):
        y = _uniform(rng, lo, o.y0 - GAP - h) if predicate == "above" else _uniform(rng, o.y1 + GAP, hi - h)
        return None if y is None or x_any is None else subject.at(x_any, y)
    if predicate == "next_to":
        gap = rng.uniform(0.01, 0.06)
        x = o.x0 - gap - w if rng.random() < 0.5 else o.x1 + gap
        y = o.cy - h / 2 + rng.uniform(-0.2, 0.2) * min(h, o.h)
        box = subject.at(x, y, z=min(1.0, max(0.0, o.z + rng.uniform(-0.1, 0.1))))
        return box if lo <= box.x0 and box.x1 <= hi and lo <= box.y0 and box.y1 <= hi else None
    if predicate == "between":
        left, right = sorted(others[:2], key=lambda b: b.cx)
        x = _uniform(rng, left.x1 + GAP, right.x0 - GAP - w)
        return None if x is None or y_any is None else subject.at(x, y_any)
    if predicate in ("in_front_of", "behind"):
        z = _uniform(rng, 0.0, o.z - DEPTH_GAP) if predicate == "in_front_of" else _uniform(rng, o.z + DEPTH_GAP, 1.0)
        return None if z is None else replace(subject, z=z)
    if predicate == "on_top_of":
        x = _uniform(rng, o.x0, o.x1 - w) if w <= o.w else None
        return None if x is None or o.y0 - h < lo else subject.at(x, o.y0 - h, z=o.z)
    if predicate == "under":
        if not roles[0] or o.w > w:
            return None
        x = _uniform(rng, max(lo, o.cx - w + 0.01), min(hi - w, o.cx - 0.01))
        return None if x is None or o.y1 + h > hi else subject.at(x, o.y1, z=o.z)
    if predicate == "inside":
        if w > 0.7 * o.w or h > 0.7 * o.h:
            return None
        return subject.at(rng.uniform(o.x0, o.x1 - w), rng.uniform(o.y0, o.y1 - h), z=o.z)
    if predicate == "partly_hidden_behind":
        z = _uniform(rng, o.z + DEPTH_GAP, 1.0)
        if z is None:
            return None
        f = rng.uniform(0.3, 0.5)
        x = o.x1 - f * w if rng.random() < 0.5 else o.x0 + f * w - w
        y = min(max(o.cy - h / 2, lo), hi - h)
        box = subject.at(x, y, z=z)
        return box if lo <= box.x0 and box.x1 <= hi else None
    raise ValueError(f"unknown relation {predicate!r}")
