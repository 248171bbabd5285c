"""Extra negatives for the shapes scorer: the same objects dropped at random places (overlaps allowed).

A perturbed image of the dataset breaks 1-3 stated relations and keeps the rest clearly true; a reranked
generation (best-of-N, a GRPO group) breaks any subset, sometimes only barely, and objects may overlap. Each
training row gets `per_row` such re-layouts of its perfect scene that the pixel oracle rejects, as extra pairs
(prompt, perfect image, re-layout), with their layouts for the grounding loss. The result is one pairs JSONL
holding the dataset's own rows (image paths made absolute) and the new ones, which `training.reward train` reads.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image

from ...common.atomic import write_text
from ...dataset.oracle import judge
from ...dataset.scene import Scene, random_relayout
from ...dataset.shapes_render import render_shapes

MIX_FILE = "pairs.jsonl"


def build_mix(data: Path, out: Path, per_row: int = 1, seed: int = 0, tries: int = 20) -> Path:
    """Write out/images/*.png and out/pairs.jsonl (atomically, last); skipped when pairs.jsonl exists."""
    mix = out / MIX_FILE
    if mix.is_file():
        return mix
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = [json.loads(x) for x in (data / "manifest.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    lines = []
    for k, row in enumerate(rows):
        base = {**row, "chosen": str((data / row["chosen"]).resolve()),
                "rejected": str((data / row["rejected"]).resolve())}
        lines.append(base)
        scene = Scene.from_dict(row["scene"])
        if k == 0:
            size = Image.open(data / row["chosen"]).width  # the dataset's canvas
        rng = random.Random(seed * 1_000_003 + k)
        made = 0
        for _ in range(tries * per_row):
            if made == per_row:
                break
            moved = random_relayout(scene, rng)
            if moved is None:
                continue
            image = render_shapes(moved, size=size)
            verdict = judge(image, row["prompt"])
            failing = sum(not holds for _, holds in verdict.relations)
            if failing == 0:
                continue  # the oracle accepts it: not a negative
            name = f"images/{row['id']}_relayout{made}.png"
            image.save(out / name)
            lines.append({"id": f"{row['id']}-relayout{made}", "scene_id": row.get("scene_id"),
                          "split": row["split"], "prompt": row["prompt"], "chosen": base["chosen"],
                          "rejected": str((out / name).resolve()), "perturbations": failing,
                          "relation_types": row.get("relation_types", []), "scene": row["scene"],
                          "perturbed_scene": moved.to_dict(), "generator": "shapes-relayout"})
            made += 1
    write_text(mix, "".join(json.dumps(r) + "\n" for r in lines))
    return mix


def candidates_for(row: dict, n: int, seed: int) -> list[Image.Image]:
    """The perfect image of a held-out scene (a manifest row, its folder under "_dir") plus n-1 random re-layouts of
    the same objects: the pictures a reranker chooses among (the demo's contact sheet, shapes_eval's rerank)."""
    scene = Scene.from_dict(row["scene"])
    rng = random.Random(seed)
    scenes = [scene]
    while len(scenes) < n:
        moved = random_relayout(scene, rng)
        if moved is not None:
            scenes.append(moved)
    size = Image.open(Path(row["_dir"]) / row["chosen"]).width
    return [render_shapes(s, size=size) for s in scenes]
