"""Object-level negatives for the shapes scorer: the prompt's objects missing, recoloured, doubled or smeared.

The dataset's perturbed images (and the re-layouts of shapes_relayout.py) always draw exactly the named objects,
each once, in its colour: a scorer trained on them only ever compares placements. A generator's pictures fail in
other ways first (an object missing, the wrong colour, two of one, colour smeared in stripes), and a GRPO policy
drifts towards whatever of these the scorer does not penalise (research/shapes_grpo/journal.md, run A). Each training row gets
`per_row` pictures of its perfect scene with one object-level fault, as extra pairs (prompt, perfect image, faulty):

  drop       one named object removed
  recolour   one object painted in a colour the prompt does not name
  duplicate  a second copy of one object somewhere else
  clutter    3-8 thin bars in the prompt's colours added to the scene (the stripes of run A)
  extra      1-3 objects added in colours the prompt does not name (what GRPO against a scorer that never saw
             them drew, research/shapes_grpo/journal.md "GRPO on it")

Their scene layouts go along for the grounding loss: a word that names two objects (a doubled colour, a bar) has no
single centre, so it is simply not grounded in that picture.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

from PIL import Image

from ...common.atomic import write_text
from ...dataset.oracle import SHAPES
from ...dataset.relations import Box
from ...dataset.scene import Scene, SceneObject
from ...dataset.shapes_render import SHAPE_RGB, render_shapes

KINDS = ("drop", "recolour", "duplicate", "clutter", "extra")
OBJECTS_FILE = "pairs.jsonl"


def object_fault(scene: Scene, kind: str, rng: random.Random) -> Scene | None:
    """`scene` with one object-level fault of `kind`; None when the scene cannot take it."""
    objects = list(scene.objects)
    if kind == "drop":
        if len(objects) < 2:
            return None
        objects.pop(rng.randrange(len(objects)))
    elif kind == "recolour":
        spare = [c for c in SHAPE_RGB if c not in {o.color for o in objects}]
        if not spare:
            return None
        i = rng.randrange(len(objects))
        objects[i] = replace(objects[i], color=rng.choice(spare))
    elif kind == "duplicate":
        source = rng.choice(objects)
        box = _free_place(source.box, objects, rng)
        if box is None:
            return None
        objects.append(replace(source, id=f"{source.id}_copy", box=box))
    elif kind == "clutter":
        colors = sorted({o.color for o in objects})
        for k in range(rng.randint(3, 8)):
            w, h = rng.uniform(0.03, 0.08), rng.uniform(0.25, 0.9)
            if rng.random() < 0.3:
                w, h = h, w  # some bars lie flat
            x0, y0 = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
            objects.append(SceneObject(f"bar{k}", "square", rng.choice(colors), Box(x0, y0, x0 + w, y0 + h)))
    elif kind == "extra":
        spare = [c for c in SHAPE_RGB if c not in {o.color for o in objects}]
        if not spare:
            return None
        for k in range(rng.randint(1, 3)):
            source = rng.choice(scene.objects)  # an object's size, so that the extra one looks like an object
            box = _free_place(source.box, objects, rng)
            if box is None:
                break
            objects.append(SceneObject(f"extra{k}", rng.choice(SHAPES), rng.choice(spare), box))
        if len(objects) == len(scene.objects):
            return None
    else:
        raise ValueError(f"unknown object fault {kind!r}; expected one of {', '.join(KINDS)}")
    return Scene(scene.world, tuple(objects), scene.relations if kind != "drop" else (), scene.setting)


def _free_place(box: Box, objects: list[SceneObject], rng: random.Random, tries: int = 30) -> Box | None:
    """`box` moved to a random place clear of every object (an added object touching one would merge with it into
    a single blob: no extra object at all); None when no such place is found."""
    if box.w >= 1 or box.h >= 1:
        return None
    for _ in range(tries):
        moved = box.at(rng.uniform(0, 1 - box.w), rng.uniform(0, 1 - box.h))
        if all(moved.x1 < o.box.x0 or o.box.x1 < moved.x0 or moved.y1 < o.box.y0 or o.box.y1 < moved.y0
               for o in objects):
            return moved
    return None


def build_object_negatives(pairs_file: Path, out: Path, per_row: int = 1, seed: int = 0) -> Path:
    """Write out/images/*.png and out/pairs.jsonl (the input rows plus the faulty pictures, atomically, last);
    skipped when out/pairs.jsonl exists. `pairs_file`: a pairs JSONL with absolute image paths and scenes (the
    output of shapes_relayout.build_mix)."""
    result = out / OBJECTS_FILE
    if result.is_file():
        return result
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in pairs_file.read_text(encoding="utf-8").splitlines() if x.strip()]
    lines = [json.dumps(r) + "\n" for r in rows]
    size = None  # the dataset's canvas, from its first picture
    for k, row in enumerate(rows):
        if "relayout" in str(row.get("generator", "")) or not isinstance(row.get("scene"), dict):
            continue  # one set of faults per dataset row, not per re-layout
        rng = random.Random(seed * 1_000_003 + k)
        scene = Scene.from_dict(row["scene"])
        if size is None:
            with Image.open(row["chosen"]) as first:
                size = first.width
        for j in range(per_row):
            for kind in rng.sample(KINDS, len(KINDS)):  # a random kind this scene can take
                faulty = object_fault(scene, kind, rng)
                if faulty is not None:
                    break
            else:
                continue
            name = f"images/{row['id']}_{kind}{j}.png"
            render_shapes(faulty, size=size).save(out / name)
            lines.append(json.dumps({
                "id": f"{row['id']}-{kind}{j}", "scene_id": row.get("scene_id"), "split": row.get("split"),
                "prompt": row["prompt"], "chosen": row["chosen"], "rejected": str((out / name).resolve()),
                "perturbations": 1, "relation_types": row.get("relation_types", []), "scene": row["scene"],
                "perturbed_scene": faulty.to_dict(), "generator": f"shapes-objects-{kind}"}) + "\n")
    write_text(result, "".join(lines))
    return result
