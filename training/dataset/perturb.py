"""Perturb a scene: change exactly k of its stated relations while every other one stays clearly true.

Four operations, as in the paper's adversarial pairs:
- flip: the relation points the other way ("left of" -> "right of"),
- swap: subject and object trade places ("A left of B" -> "B left of A"),
- replace: a different relation between the same objects ("left of" -> "above"),
- move: one object goes somewhere else; the relations it breaks are rewritten to what now holds.
Each result comes with a new layout in which the perturbed prompt is true and each changed original relation
is clearly false, so a perturbed image can be rendered (shapes) and judged (oracle).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .relations import ARITY, INVERSE, SYMMETRIC, Box, place, truth
from .scene import CONSTRUCTIVE, Relation, Scene
from .worlds import WorldSpec

OPS = ("flip", "swap", "replace", "move")


@dataclass(frozen=True)
class Change:
    index: int  # position of the changed relation in the original scene
    op: str
    before: Relation
    after: Relation


@dataclass(frozen=True)
class Perturbation:
    scene: Scene  # the perturbed scene: new layout, relations with the changes applied
    changes: tuple[Change, ...]

    @property
    def count(self) -> int:
        return len(self.changes)


def _sensible(world: WorldSpec, scene: Scene, rel: Relation) -> bool:
    """Categories that can carry / hold things: no "a table on top of a cup", no "a dog inside a cat"."""
    if rel.predicate not in world.predicates or len(set(rel.ids)) != len(rel.ids):
        return False
    if rel.predicate == "on_top_of":
        return world.category(scene.obj(rel.objects[0]).category).support
    if rel.predicate == "under":
        return world.category(scene.obj(rel.subject).category).support
    if rel.predicate == "inside":
        return world.category(scene.obj(rel.objects[0]).category).container
    return True


def _edit(op: str, rel: Relation, world: WorldSpec, scene: Scene, rng: random.Random) -> Relation | None:
    p = rel.predicate
    if op == "flip":
        return Relation(rel.subject, INVERSE[p], rel.objects) if p in INVERSE else None
    if op == "swap":
        if p in SYMMETRIC:
            return None
        if p == "between":
            return Relation(rel.objects[0], p, (rel.subject, rel.objects[1]))
        return Relation(rel.objects[0], p, (rel.subject,))
    if op == "replace":
        others = [q for q in world.predicates if q not in (p, INVERSE.get(p))]
        q = rng.choice(others)
        if ARITY[q] == 3:
            third = [o.id for o in scene.objects if o.id not in rel.ids[:2]]
            return Relation(rel.subject, q, (rel.objects[0], rng.choice(third))) if third else None
        return Relation(rel.subject, q, rel.objects[:1])
    raise ValueError(f"unknown perturbation {op!r}; expected one of {', '.join(OPS)}")


def _make_true(rel: Relation, layout: dict[str, Box], world: WorldSpec, scene: Scene, rng: random.Random) -> bool:
    """Move objects of `rel` so that it clearly holds; False when no placement finds room.

    Strategies, in random order: move the subject next to the object; move the object (by the inverse
    relation); or first move the object somewhere else, then the subject next to it (for when both sit
    against the side of the canvas the relation needs).
    """
    cat = lambda i: world.category(scene.obj(i).category)  # noqa: E731
    roles = lambda i: (cat(i).support, cat(i).container)  # noqa: E731
    strategies = ["subject", "relocate"]
    if ARITY[rel.predicate] == 2 and rel.predicate in INVERSE:
        strategies.append("object")
    rng.shuffle(strategies)
    for strategy in strategies:
        trial = dict(layout)
        if strategy == "object":
            mover, pred, anchor = rel.objects[0], INVERSE[rel.predicate], [rel.subject]
        else:
            mover, pred, anchor = rel.subject, rel.predicate, list(rel.objects)
            if strategy == "relocate":
                a = anchor[0]
                lo, hi = world.margin, 1 - world.margin
                box = trial[a]
                trial[a] = box.at(rng.uniform(lo, hi - box.w), rng.uniform(lo, hi - box.h)).rounded()
        box = place(pred, trial[mover], [trial[a] for a in anchor], rng, world.margin, roles(mover))
        if box is not None:
            trial[mover] = box.rounded()
            layout.update(trial)
            return True
    return False


def _rewrite(rel: Relation, layout: dict[str, Box], world: WorldSpec, scene: Scene,
             rng: random.Random) -> Relation | None:
    """What now holds between the subject and (first) object of a relation that a move broke."""
    s, o = rel.subject, rel.objects[0]
    true = [q for q in world.predicates if ARITY[q] == 2 and truth(q, [layout[s], layout[o]]) is True
            and _sensible(world, scene, Relation(s, q, (o,)))]
    if not true:
        return None
    if INVERSE.get(rel.predicate) in true:
        return Relation(s, INVERSE[rel.predicate], (o,))
    return Relation(s, rng.choice(sorted(true)), (o,))


def _valid(world: WorldSpec, base: Scene, layout: dict[str, Box], changes: list[Change]) -> Scene | None:
    changed = {c.index for c in changes}
    boxes = lambda rel: [layout[i] for i in rel.ids]  # noqa: E731
    if not world.plausible(list(layout.values())):
        return None
    for i, rel in enumerate(base.relations):
        if i in changed:
            if truth(rel.predicate, boxes(rel)) is not False:
                return None
        elif truth(rel.predicate, boxes(rel)) is not True:
            return None
    after = {c.index: c.after for c in changes}
    relations = [after.get(i, rel) for i, rel in enumerate(base.relations)]
    if len(set(relations)) != len(relations) or any(truth(c.after.predicate, boxes(c.after)) is not True
                                                     for c in changes):
        return None
    return base.with_boxes(layout).with_relations(relations)


def _try_edit(op: str, scene: Scene, world: WorldSpec, k: int, rng: random.Random) -> Perturbation | None:
    indices = list(range(len(scene.relations)))
    rng.shuffle(indices)
    picked: list[Change] = []
    for i in indices:
        after = _edit(op, scene.relations[i], world, scene, rng)
        if after is not None and _sensible(world, scene, after):
            picked.append(Change(i, op, scene.relations[i], after))
        if len(picked) == k:
            break
    if len(picked) < k:
        return None
    layout = {o.id: o.box for o in scene.objects}
    for change in picked:
        if not _make_true(change.after, layout, world, scene, rng):
            return None
    new = _valid(world, scene, layout, picked)
    return None if new is None else Perturbation(new, tuple(sorted(picked, key=lambda c: c.index)))


def _try_move(scene: Scene, world: WorldSpec, k: int, rng: random.Random) -> Perturbation | None:
    movable = [o.id for o in scene.objects if sum(o.id in r.ids for r in scene.relations) >= k]
    if not movable:
        return None
    mover = rng.choice(movable)
    layout = {o.id: o.box for o in scene.objects}
    lo, hi = world.margin, 1 - world.margin
    box = layout[mover]
    box = box.at(rng.uniform(lo, hi - box.w), rng.uniform(lo, hi - box.h),
                 z=rng.uniform(0.2, 0.8) if world.attributes else box.z)
    if world.attributes and rng.random() < 0.5:
        anchor = rng.choice([o for o in layout if o != mover])
        box = place(rng.choice(CONSTRUCTIVE), box, [layout[anchor]], rng, world.margin)
        if box is None:
            return None
    layout[mover] = box.rounded()
    changes = []
    for i, rel in enumerate(scene.relations):
        t = truth(rel.predicate, [layout[j] for j in rel.ids])
        if t is None:
            return None
        if t is False:
            after = _rewrite(rel, layout, world, scene, rng)
            if after is None:
                return None
            changes.append(Change(i, "move", rel, after))
    if len(changes) != k:
        return None
    new = _valid(world, scene, layout, changes)
    return None if new is None else Perturbation(new, tuple(changes))


def perturb(scene: Scene, world: WorldSpec, rng: random.Random, k: int, ops: tuple[str, ...] = OPS,
            tries: int = 200) -> Perturbation | None:
    """A perturbation of exactly `k` relations (1-3), or None if none was found in `tries` attempts."""
    if not 1 <= k <= len(scene.relations):
        raise ValueError(f"cannot change {k} relation(s) of a scene with {len(scene.relations)}")
    per_op = 25  # stay with the drawn operation a while, so hard ones (move, replace) are not crowded out
    for i in range(tries):
        if i % per_op == 0:
            op = rng.choice(ops)
        result = _try_move(scene, world, k, rng) if op == "move" else _try_edit(op, scene, world, k, rng)
        if result is not None:
            return result
    return None
