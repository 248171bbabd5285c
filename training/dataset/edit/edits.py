"""One edit example: a source scene, an instruction, the correct edit and one mistaken edit.

The five kinds of mistake (which edit kinds each applies to):
    wrong_direction  move / add: the object ends up on another side of the reference than asked
    wrong_object     every kind: another object is moved / recoloured / removed; add: the wrong shape or colour
    over_edit        every kind: the right edit plus an unasked change to another object (moved, recoloured,
                     removed)
    no_change        every kind: the edited image is the source
    partial          move: moved toward the goal but not far enough; add: placed but not far enough; recolor:
                     only half recoloured; remove: shrunk instead of removed
A relation is made to hold (or fail) by a clear margin beyond the pixel oracle's, so every correct edit passes the
oracle and every mistake fails it, on exact renders.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from .instructions import KINDS, OPPOSITE, PHRASE, Instruction
from .scene import MARGIN, SHAPES, Scene, Shape, by_color, fits, free_colors, random_shape, sample_scene

MISTAKES = ("wrong_direction", "wrong_object", "over_edit", "no_change", "partial")
APPLIES = {"wrong_direction": ("move", "add"), "wrong_object": KINDS, "over_edit": KINDS, "no_change": KINDS,
           "partial": KINDS}
ORACLE_MARGIN = 0.25  # the pixel oracle's: centres apart by more than a quarter of the summed sizes
CLEAR = 0.06  # generated relations hold (or fail) by this much more
MIN_MOVE = 0.1  # a move shifts the centre at least this far


@dataclass(frozen=True)
class EditExample:
    instruction: Instruction
    source: Scene
    chosen: Scene
    rejected: Scene
    mistake: str


def relation_score(pred: str, a: Shape, b: Shape) -> float:
    """> 0 when "a <pred> b" holds under the oracle's margin, < 0 when it fails (distance to the threshold)."""
    need = ORACLE_MARGIN * (a.side + b.side)
    d = {"left_of": b.cx - a.cx, "right_of": a.cx - b.cx, "above": b.cy - a.cy, "below": a.cy - b.cy}[pred]
    return d - need


def _others(scene: Scene, *colors: str) -> list[Shape]:
    return [s for s in scene if s.color not in colors]


def _replace(scene: Scene, color: str, new: Shape | None) -> Scene:
    return tuple(new if s.color == color else s for s in scene if s.color != color or new is not None)


def _place(shape: Shape, others, rng: random.Random, ok, tries: int = 120) -> Shape | None:
    """`shape` at a random place (same size) where it fits and ok(candidate) holds."""
    lo, hi = MARGIN + shape.side / 2, 1 - MARGIN - shape.side / 2
    for _ in range(tries):
        cand = shape.moved_to(rng.uniform(lo, hi), rng.uniform(lo, hi))
        if fits(cand, others) and ok(cand):
            return cand
    return None


def _moved(a: Shape, b: Shape) -> float:
    return ((a.cx - b.cx) ** 2 + (a.cy - b.cy) ** 2) ** 0.5


def _place_related(shape: Shape, pred: str, ref: Shape, others, rng, lo: float = CLEAR, hi: float = 9.0,
                   away_from: Shape | None = None) -> Shape | None:
    def ok(c):
        return lo < relation_score(pred, c, ref) < hi and (away_from is None or _moved(c, away_from) > MIN_MOVE)

    return _place(shape, others, rng, ok)


# ------------------------------------------------------------------------------------------------ instructions
def _instruction(kind: str, src: Scene, rng: random.Random) -> tuple[Instruction, Scene] | None:
    """An instruction of `kind` for `src` and its correct edit, or None when this scene has none."""
    objs = list(src)
    if kind == "move":
        t, r = rng.sample(objs, 2)
        preds = [p for p in PHRASE if relation_score(p, t, r) < -CLEAR]  # not already true
        if not preds:
            return None
        pred = rng.choice(preds)
        new = _place_related(t, pred, r, _others(src, t.color), rng, away_from=t)
        if new is None:
            return None
        return Instruction("move", (t.color, t.shape), pred, (r.color, r.shape)), _replace(src, t.color, new)
    if kind == "recolor":
        t = rng.choice(objs)
        c = rng.choice(free_colors(src))
        return Instruction("recolor", (t.color, t.shape), new_color=c), _replace(src, t.color, replace(t, color=c))
    if kind == "remove":
        if len(objs) < 2:
            return None
        t = rng.choice(objs)
        return Instruction("remove", (t.color, t.shape)), _replace(src, t.color, None)
    free = free_colors(src)
    r = rng.choice(objs)
    pred = rng.choice(list(PHRASE))
    c, shape = rng.choice(free), rng.choice(SHAPES)
    seed = random_shape(c, shape, [], rng)
    new = _place_related(seed, pred, r, objs, rng) if seed else None
    if new is None:
        return None
    return Instruction("add", (c, shape), pred, (r.color, r.shape)), src + (new,)


# ------------------------------------------------------------------------------------------------ mistakes
def _other_change(scene: Scene, protect: set[str], rng: random.Random) -> Scene | None:
    """`scene` with one unasked change to an object whose colour is not in `protect`."""
    cands = [s for s in scene if s.color not in protect]
    if not cands:
        return None
    o = rng.choice(cands)
    options = ["move", "remove"] + (["recolor"] if free_colors(scene) else [])
    how = rng.choice(options)
    if how == "remove":
        return _replace(scene, o.color, None)
    if how == "recolor":
        return _replace(scene, o.color, replace(o, color=rng.choice(free_colors(scene))))
    new = _place(o, _others(scene, o.color), rng, lambda c: _moved(c, o) > MIN_MOVE)
    return None if new is None else _replace(scene, o.color, new)


def _mistake(mistake: str, ins: Instruction, src: Scene, good: Scene, rng: random.Random) -> Scene | None:
    if mistake == "no_change":
        return src
    if mistake == "over_edit":
        protect = {ins.target[0]} | ({ins.new_color} if ins.new_color else set())
        return _other_change(good, protect, rng)
    objs = by_color(src)
    t = objs.get(ins.target[0])
    ref = objs.get(ins.reference[0]) if ins.reference else None
    if mistake == "wrong_object":
        if ins.kind == "add":
            new = by_color(good)[ins.target[0]]
            choices = [("shape", s) for s in SHAPES if s != new.shape]
            choices += [("color", c) for c in free_colors(src) if c != new.color]
            how, value = rng.choice(choices)
            wrong = replace(new, shape=value) if how == "shape" else replace(new, color=value)
            return src + (wrong,)
        others = _others(src, t.color)
        if not others:
            return None
        o = rng.choice(others)
        if ins.kind == "recolor":
            return _replace(src, o.color, replace(o, color=ins.new_color))
        if ins.kind == "remove":
            return _replace(src, o.color, None)
        # move: the other object moves; when it is the reference, so that the stated relation holds anyway
        if o.color == ref.color:
            new = _place_related(o, OPPOSITE[ins.predicate], t, _others(src, o.color), rng, away_from=o)
        else:
            new = None
        new = new or _place(o, _others(src, o.color), rng, lambda c: _moved(c, o) > MIN_MOVE)
        return None if new is None else _replace(src, o.color, new)
    if mistake == "wrong_direction":
        if ins.kind == "move":
            new = _place_related(t, OPPOSITE[ins.predicate], ref, _others(src, t.color), rng, away_from=t)
            return None if new is None else _replace(src, t.color, new)
        added = by_color(good)[ins.target[0]]
        new = _place_related(added, OPPOSITE[ins.predicate], ref, list(src), rng)
        return None if new is None else src + (new,)
    # partial
    if ins.kind == "move":
        goal = by_color(good)[t.color]
        for _ in range(40):
            f = rng.uniform(0.25, 0.7)
            cand = t.moved_to(t.cx + f * (goal.cx - t.cx), t.cy + f * (goal.cy - t.cy))
            if (relation_score(ins.predicate, cand, ref) < -CLEAR and _moved(cand, t) > MIN_MOVE
                    and fits(cand, _others(src, t.color))):
                return _replace(src, t.color, cand)
        return None
    if ins.kind == "add":
        added = by_color(good)[ins.target[0]]
        new = _place_related(added, ins.predicate, ref, list(src), rng, lo=-0.2, hi=-CLEAR)
        return None if new is None else src + (new,)
    if ins.kind == "recolor":
        return _replace(src, t.color, replace(t, color=ins.new_color, right_color=t.color))
    side = round(t.side * 0.55, 4)  # remove: shrunk, not gone
    return _replace(src, t.color, Shape(t.color, t.shape, round(t.cx - side / 2, 4), round(t.cy - side / 2, 4), side))


def sample_example(rng: random.Random, mistake: str | None = None, kind: str | None = None,
                   tries: int = 200) -> EditExample:
    """A random edit example; the mistake is drawn first (each equally often), then an edit kind it applies to."""
    mistake = mistake or rng.choice(MISTAKES)
    if mistake not in MISTAKES:
        raise ValueError(f"unknown mistake {mistake!r}; expected one of {', '.join(MISTAKES)}")
    k = kind or rng.choice(APPLIES[mistake])  # drawn once: kinds whose mistake is harder to make stay as common
    if k not in APPLIES[mistake]:
        raise ValueError(f"mistake {mistake!r} applies to {', '.join(APPLIES[mistake])}, not {k!r}")
    for _ in range(tries):
        src = sample_scene(rng)
        made = _instruction(k, src, rng)
        if made is None:
            continue
        ins, good = made
        bad = _mistake(mistake, ins, src, good, rng)
        if bad is not None and bad != good:
            return EditExample(ins, src, good, bad, mistake)
    raise RuntimeError(f"could not make a {mistake!r} example in {tries} tries")
