"""Scene graphs (objects with attributes and a layout, relations, a setting) and their seeded sampler.

The layout is what makes a scene graph consistent: every stated relation clearly holds in it, so a prompt
never contradicts itself, and a perturbation is a second layout in which exactly the changed relations fail.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .relations import ARITY, PREDICATES, Box, place, truth
from .worlds import WorldSpec, get_world

# How often the sampler picks each kind of true fact as a stated relation (3D facts were built on purpose).
FACT_WEIGHTS = {"on_top_of": 8.0, "under": 4.0, "inside": 8.0, "partly_hidden_behind": 4.0, "next_to": 3.0,
                "between": 2.0, "in_front_of": 0.6, "behind": 0.6}
CONSTRUCTIVE = ("on_top_of", "inside", "partly_hidden_behind", "in_front_of", "behind", "next_to")
CONSTRUCTIVE_WEIGHTS = (3.0, 3.0, 2.0, 1.0, 1.0, 2.0)


@dataclass(frozen=True)
class SceneObject:
    id: str
    category: str
    color: str
    box: Box
    count: int = 1
    size: str | None = None  # "small", "large", ...
    material: str | None = None

    def to_dict(self) -> dict:
        b = self.box
        d = {"id": self.id, "category": self.category, "color": self.color, "count": self.count,
             "box": [b.x0, b.y0, b.x1, b.y1], "z": b.z}
        if self.size:
            d["size"] = self.size
        if self.material:
            d["material"] = self.material
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SceneObject:
        return cls(d["id"], d["category"], d["color"], Box(*d["box"], d.get("z", 0.5)), d.get("count", 1),
                   d.get("size"), d.get("material"))


@dataclass(frozen=True)
class Relation:
    subject: str
    predicate: str
    objects: tuple[str, ...]  # one object id, two for "between"

    def __post_init__(self):
        if self.predicate not in PREDICATES:
            raise ValueError(f"unknown relation {self.predicate!r}; expected one of {', '.join(PREDICATES)}")
        if len(self.objects) != ARITY[self.predicate] - 1:
            raise ValueError(f"relation {self.predicate!r} takes {ARITY[self.predicate] - 1} object(s), "
                             f"got {len(self.objects)}")

    @property
    def ids(self) -> tuple[str, ...]:
        return (self.subject, *self.objects)

    def to_dict(self) -> dict:
        return {"subject": self.subject, "predicate": self.predicate, "objects": list(self.objects)}

    @classmethod
    def from_dict(cls, d: dict) -> Relation:
        return cls(d["subject"], d["predicate"], tuple(d["objects"]))


@dataclass(frozen=True)
class Scene:
    world: str
    objects: tuple[SceneObject, ...]
    relations: tuple[Relation, ...]
    setting: str | None = None
    _index: dict = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_index", {o.id: o for o in self.objects})

    def obj(self, object_id: str) -> SceneObject:
        return self._index[object_id]

    def truth(self, rel: Relation) -> bool | None:
        return truth(rel.predicate, [self.obj(i).box for i in rel.ids])

    def holds(self) -> bool:
        return all(self.truth(r) is True for r in self.relations)

    def with_boxes(self, boxes: dict[str, Box]) -> Scene:
        objs = tuple(SceneObject(o.id, o.category, o.color, boxes.get(o.id, o.box), o.count, o.size, o.material)
                     for o in self.objects)
        return Scene(self.world, objs, self.relations, self.setting)

    def with_relations(self, relations) -> Scene:
        return Scene(self.world, self.objects, tuple(relations), self.setting)

    def to_dict(self) -> dict:
        d = {"world": self.world, "objects": [o.to_dict() for o in self.objects],
             "relations": [r.to_dict() for r in self.relations]}
        if self.setting:
            d["setting"] = self.setting
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls(d["world"], tuple(SceneObject.from_dict(o) for o in d["objects"]),
                   tuple(Relation.from_dict(r) for r in d["relations"]), d.get("setting"))


# ---------------------------------------------------------------- sampling
def _sample_objects(world: WorldSpec, n: int, rng: random.Random) -> list[SceneObject] | None:
    if world.distinct_colors:
        colors = rng.sample(world.colors, n)
    else:
        colors = [rng.choice(world.colors) for _ in range(n)]
    if world.attributes:
        cats = rng.sample(world.categories, n)
    else:
        cats = [rng.choice(world.categories) for _ in range(n)]
    drafts = []
    for i, (cat, color) in enumerate(zip(cats, colors, strict=True)):
        count, size, material = 1, None, None
        if world.attributes:
            if cat.size[1] < 0.28 and rng.random() < 0.15:
                count = rng.choice((2, 3))
            if rng.random() < 0.25:
                size = rng.choice(("small", "large", "tiny", "big"))
            if cat.materials and rng.random() < 0.3:
                material = rng.choice(cat.materials)
        w = rng.uniform(*cat.size) * (1 + 0.6 * (count - 1))
        w = min(w, 0.5)
        h = min(w * cat.aspect, 0.6)
        if not world.attributes:
            h = w  # shapes are drawn in square boxes
        drafts.append((cat, SceneObject(f"o{i}", cat.name, color, Box(0, 0, w, h), count, size, material)))
    # Big things first, so that small ones can be put on or in them.
    drafts.sort(key=lambda d: -d[1].box.area)
    placed: list[tuple] = []
    for cat, obj in drafts:
        box = None
        for _ in range(60):
            candidate = _random_box(world, obj.box, rng)
            if candidate is None:
                break
            if world.attributes and placed and rng.random() < 0.6:
                ocat, other = rng.choice(placed)
                ok = [(p, w) for p, w in zip(CONSTRUCTIVE, CONSTRUCTIVE_WEIGHTS, strict=True)
                      if (p != "on_top_of" or ocat.support) and (p != "inside" or ocat.container)]
                pred = rng.choices([p for p, _ in ok], [w for _, w in ok])[0]
                candidate = place(pred, candidate, [other.box], rng, world.margin, (cat.support, cat.container))
                if candidate is None:
                    continue
            candidate = candidate.rounded()
            if world.plausible([p.box for _, p in placed] + [candidate]):
                box = candidate
                break
        if box is None:
            return None
        placed.append((cat, SceneObject(obj.id, obj.category, obj.color, box, obj.count, obj.size, obj.material)))
    placed.sort(key=lambda p: int(p[1].id[1:]))
    return [p for _, p in placed]


def _random_box(world: WorldSpec, box: Box, rng: random.Random) -> Box | None:
    lo, hi = world.margin, 1 - world.margin
    if box.w > hi - lo or box.h > hi - lo:
        return None
    z = rng.uniform(0.2, 0.8) if world.attributes else 0.5
    return box.at(rng.uniform(lo, hi - box.w), rng.uniform(lo, hi - box.h), z=z)


def random_relayout(scene: Scene, rng: random.Random) -> Scene | None:
    """The same objects, each at a uniformly random place of its world (overlaps allowed, relations unchecked):
    the arbitrary layouts a reranker or a GRPO group meets. None when an object does not fit the canvas."""
    world = get_world(scene.world)
    boxes = {o.id: _random_box(world, o.box, rng) for o in scene.objects}
    return scene.with_boxes(boxes) if all(boxes.values()) else None


def true_facts(world: WorldSpec, objects: list[SceneObject]) -> list[Relation]:
    """Every relation of the world that clearly holds among these objects (the candidates a prompt may state)."""
    facts = []
    for s in objects:
        for o in objects:
            if o.id == s.id:
                continue
            for p in world.predicates:
                if p == "between":
                    for o2 in objects:
                        if o2.id not in (s.id, o.id) and o.id < o2.id and truth(p, [s.box, o.box, o2.box]) is True:
                            facts.append(Relation(s.id, p, (o.id, o2.id)))
                elif truth(p, [s.box, o.box]) is True:
                    facts.append(Relation(s.id, p, (o.id,)))
    return facts


def _pairs(rel: Relation) -> set[frozenset]:
    return {frozenset((rel.subject, o)) for o in rel.objects}


def _choose_relations(world: WorldSpec, objects: list[SceneObject], rng: random.Random) -> list[Relation] | None:
    n = len(objects)
    target = rng.randint(n - 1, min(world.max_relations, n + 1, n * (n - 1) // 2))
    facts = true_facts(world, objects)
    chosen: list[Relation] = []
    used: set[frozenset] = set()
    covered: set[str] = set()
    all_ids = {o.id for o in objects}
    while len(chosen) < target or covered != all_ids:
        options = [f for f in facts if not (_pairs(f) & used)]
        if covered != all_ids:
            # Grow a connected description: a new object, tied to one already mentioned.
            options = [f for f in options if set(f.ids) - covered and (not covered or set(f.ids) & covered)]
        if not options:
            return None
        weights = [FACT_WEIGHTS.get(f.predicate, 1.0) for f in options]
        fact = rng.choices(options, weights)[0]
        chosen.append(fact)
        used |= _pairs(fact)
        covered |= set(fact.ids)
    return chosen


def sample_scene(world: WorldSpec | str, rng: random.Random) -> Scene:
    """A random scene of `world` whose stated relations all clearly hold; deterministic for the rng state."""
    world = get_world(world) if isinstance(world, str) else world
    for _ in range(200):
        n = rng.randint(*world.n_objects)
        objects = _sample_objects(world, n, rng)
        if objects is None:
            continue
        relations = _choose_relations(world, objects, rng)
        if relations is None:
            continue
        setting = rng.choice(world.settings) if world.settings else None
        scene = Scene(world.name, tuple(objects), tuple(relations), setting)
        if scene.holds():
            return scene
    raise RuntimeError(f"could not sample a consistent scene for world {world.name!r} in 200 tries")
