"""Scorer pairs from a generator's own pictures: levels from the oracle and purity, pairs within a group."""

import json
import random

from training.dataset.scene import Scene
from training.dataset.shapes_render import render_shapes
from training.grpo.recipes.shapes_generated_pairs import (
    DRAWN,
    MISSING,
    UNCLEAN,
    VERIFIED,
    group_pairs,
    verdicts_with_layouts,
)
from training.reward.recipes.shapes_objects import object_fault
from training.reward.train.pairs import read_pairs

from ..reward.reward_pairs import build_shapes


def test_levels_and_layouts_of_rendered_pictures(tmp_path):
    data = build_shapes(tmp_path / "data", 4, 31)
    rows = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines()]
    for k, row in enumerate(rows):
        scene = Scene.from_dict(row["scene"])
        pictures = [render_shapes(scene, 64), render_shapes(Scene.from_dict(row["perturbed_scene"]), 64),
                    render_shapes(object_fault(scene, "drop", random.Random(k)), 64),
                    render_shapes(object_fault(scene, "clutter", random.Random(k)), 64)]
        extra = object_fault(scene, "extra", random.Random(k))
        pictures.append(render_shapes(extra or scene, 64))
        perfect, perturbed, dropped, cluttered, added = verdicts_with_layouts(pictures, row["prompt"])
        assert perfect["level"] == VERIFIED and perturbed["level"] == DRAWN and dropped["level"] == MISSING
        assert cluttered["level"] < VERIFIED  # every relation may still hold, but the colours are not clean
        if extra is not None:  # the relations hold among objects of colours the prompt does not name
            assert added["level"] == UNCLEAN
        assert perturbed["failing"] >= 1
        # the layout the oracle found is the scene's own (within a pixel)
        truth = {o.color: o.box for o in scene.objects}
        for obj in perfect["scene"]["objects"]:
            box = truth[obj["color"]]
            assert abs(obj["box"][0] - box.x0) < 2 / 64 and abs(obj["box"][3] - box.y1) < 2 / 64
        assert len(dropped["scene"]["objects"]) == len(scene.objects) - 1


def test_group_pairs_prefer_the_better_level():
    verdicts = [{"level": lv} for lv in (MISSING, DRAWN, VERIFIED, MISSING, DRAWN, UNCLEAN)]
    pairs = group_pairs(verdicts, random.Random(0), per_kind=3)
    assert pairs and all(verdicts[c]["level"] > verdicts[r]["level"] for c, r in pairs)
    assert {verdicts[c]["level"] for c, _ in pairs} >= {VERIFIED, DRAWN}
    assert (2, 5) in pairs  # a verified picture against the clutter shortcut, always asked for
    assert group_pairs([{"level": DRAWN}] * 4, random.Random(0)) == []  # no preference within one level
    # a cluttered picture is never preferred to a clean one with a relation wrong: that order is not the oracle's
    assert group_pairs([{"level": DRAWN}, {"level": UNCLEAN}], random.Random(0)) == []


def test_generated_rows_read_as_pairs_with_layouts(tmp_path):
    data = build_shapes(tmp_path / "data", 2, 5)
    row = json.loads((data / "manifest.jsonl").read_text().splitlines()[0])
    scene = Scene.from_dict(row["scene"])
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    render_shapes(scene, 64).save(a)
    render_shapes(object_fault(scene, "drop", random.Random(0)), 64).save(b)
    va, vb = verdicts_with_layouts([render_shapes(scene, 64), render_shapes(object_fault(
        scene, "drop", random.Random(0)), 64)], row["prompt"])
    line = {"id": "g", "split": "train", "prompt": row["prompt"], "chosen": str(a), "rejected": str(b),
            "perturbations": vb["failing"], "scene": va["scene"], "perturbed_scene": vb["scene"]}
    (tmp_path / "pairs.jsonl").write_text(json.dumps(line) + "\n")
    (pair,) = read_pairs(tmp_path / "pairs.jsonl")
    assert pair.layouts is not None and len(pair.layouts[0]) > len(pair.layouts[1])
