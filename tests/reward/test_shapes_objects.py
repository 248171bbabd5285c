"""Object-level negatives for the shapes scorer: each kind of fault is what it says, and the rows train."""

import json
import random

from PIL import Image

from training.dataset.oracle import colour_purity, find_objects
from training.dataset.scene import Scene
from training.reward.recipes.shapes_objects import KINDS, build_object_negatives, object_fault
from training.reward.recipes.shapes_relayout import build_mix
from training.reward.train.pairs import read_pairs

from .reward_pairs import build_shapes


def _scene(data, k=0) -> Scene:
    row = json.loads((data / "manifest.jsonl").read_text().splitlines()[k])
    return Scene.from_dict(row["scene"])


def test_each_fault_changes_what_it_names(tmp_path):
    data = build_shapes(tmp_path / "data", 6, 99)
    for k in range(6):
        scene = _scene(data, k)
        colors = {o.color for o in scene.objects}
        rng = random.Random(k)
        dropped = object_fault(scene, "drop", rng)
        assert len(dropped.objects) == len(scene.objects) - 1
        recoloured = object_fault(scene, "recolour", rng)
        if recoloured is not None:  # a scene using every colour has none to spare
            assert len({o.color for o in recoloured.objects} - colors) == 1
        doubled = object_fault(scene, "duplicate", rng)
        assert len(doubled.objects) == len(scene.objects) + 1
        assert len({o.color for o in doubled.objects}) == len(colors)
        cluttered = object_fault(scene, "clutter", rng)
        assert len(cluttered.objects) >= len(scene.objects) + 3
        assert {o.color for o in cluttered.objects} == colors  # bars only in the prompt's colours
        extra = object_fault(scene, "extra", rng)
        if extra is not None:
            added = extra.objects[len(scene.objects):]
            assert extra.objects[: len(scene.objects)] == scene.objects and 1 <= len(added) <= 3
            assert all(o.color not in colors for o in added)


def test_faults_that_keep_the_relations_are_not_clean(tmp_path):
    """The oracle's clean check sees every fault that adds something: a scorer trained on these pairs learns
    what GRPO's clutter shortcut looks like."""
    from training.dataset.shapes_render import render_shapes
    from training.grpo.oracle_judge import oracle_verdicts

    data = build_shapes(tmp_path / "data", 6, 17)
    rows = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines()]
    seen = set()
    for k, row in enumerate(rows):
        scene = Scene.from_dict(row["scene"])
        (perfect,) = oracle_verdicts([render_shapes(scene, 64)], [row["prompt"]])
        assert perfect["clean"] and all(perfect["relations"])
        for kind in ("duplicate", "clutter", "extra"):
            faulty = object_fault(scene, kind, random.Random(k))
            if faulty is None:
                continue
            (v,) = oracle_verdicts([render_shapes(faulty, 64)], [row["prompt"]])
            assert not v["clean"], (kind, row["prompt"])
            seen.add(kind)
    assert seen == {"duplicate", "clutter", "extra"}


def test_clutter_is_impure_and_a_perfect_render_is_clean(tmp_path):
    from training.dataset.shapes_render import render_shapes

    data = build_shapes(tmp_path / "data", 4, 7)
    for k in range(4):
        scene = _scene(data, k)
        colors = sorted({o.color for o in scene.objects})
        perfect = render_shapes(scene, size=64)
        assert min(colour_purity(perfect, colors).values()) > 0.95
        cluttered = render_shapes(object_fault(scene, "clutter", random.Random(k)), size=64)
        assert min(colour_purity(cluttered, colors).values()) < 0.85
        dropped = object_fault(scene, "drop", random.Random(k))
        missing = sorted(set(colors) - {o.color for o in dropped.objects})
        found = find_objects(render_shapes(dropped, size=64), colors)
        assert all(found[c] is None for c in missing)


def test_object_negatives_train_ready(tmp_path):
    data = build_shapes(tmp_path / "data", 12, 4321)
    mix = build_mix(data, tmp_path / "mix", per_row=1, seed=3)
    result = build_object_negatives(mix, tmp_path / "objects", per_row=1, seed=5)
    rows = [json.loads(x) for x in result.read_text().splitlines()]
    faults = [r for r in rows if str(r.get("generator", "")).startswith("shapes-objects-")]
    assert len(rows) == 36 and len(faults) == 12
    assert {r["generator"].rsplit("-", 1)[1] for r in faults} <= set(KINDS)
    for r in faults:
        assert Image.open(r["rejected"]).size == Image.open(r["chosen"]).size
    pairs = read_pairs(result)  # every row keeps layouts for the grounding loss
    assert len(pairs) == 36 and all(p.layouts is not None for p in pairs)
    mtime = result.stat().st_mtime_ns  # a finished folder is found, not rebuilt
    assert build_object_negatives(mix, tmp_path / "objects") == result and result.stat().st_mtime_ns == mtime
