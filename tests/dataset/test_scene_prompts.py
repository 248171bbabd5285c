"""Scene graphs, prompts and perturbations: consistent, deterministic, exactly k relations changed."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from training.dataset.perturb import OPS, perturb
from training.dataset.prompts import PHRASES, PromptChoices, plain_prompt, render, sample_choices
from training.dataset.relations import PREDICATES, PREDICATES_2D, PREDICATES_3D, Box, truth
from training.dataset.scene import Relation, Scene, SceneObject, sample_scene
from training.dataset.worlds import GENERAL, SHAPES


def _example_scene() -> Scene:
    objects = (
        SceneObject("o0", "circle", "red", Box(0.05, 0.55, 0.25, 0.75)),
        SceneObject("o1", "square", "blue", Box(0.6, 0.55, 0.8, 0.75)),
        SceneObject("o2", "triangle", "green", Box(0.6, 0.1, 0.8, 0.3)),
    )
    rels = (Relation("o0", "left_of", ("o1",)), Relation("o2", "above", ("o1",)))
    return Scene("shapes", objects, rels)


def test_plain_form_is_the_issue_example():
    scene = _example_scene()
    assert scene.holds()
    assert plain_prompt(scene) == ("a red circle to the left of a blue square, and a green triangle above the "
                                   "blue square")


def test_relation_truth_is_three_valued():
    a, b = Box(0.1, 0.1, 0.2, 0.2), Box(0.5, 0.1, 0.6, 0.2)
    assert truth("left_of", [a, b]) is True and truth("right_of", [a, b]) is False
    near = Box(0.18, 0.1, 0.28, 0.2)  # overlaps a horizontally but its centre is to the right: too close to call
    assert truth("left_of", [a, near]) is None
    table, cup = Box(0.3, 0.6, 0.7, 0.8, z=0.5), Box(0.45, 0.5, 0.55, 0.6, z=0.5)
    assert truth("on_top_of", [cup, table]) is True and truth("under", [table, cup]) is True
    assert truth("on_top_of", [table, cup]) is False
    with pytest.raises(ValueError, match="unknown relation 'near'"):
        truth("near", [a, b])


@pytest.mark.parametrize("world", [SHAPES, GENERAL], ids=lambda w: w.name)
def test_sampling_is_deterministic_and_consistent(world):
    for i in range(40):
        a = sample_scene(world, random.Random(i))
        assert a == sample_scene(world, random.Random(i))
        assert Scene.from_dict(a.to_dict()) == a
        assert a.holds()  # every stated relation clearly holds in the layout
        lo, hi = world.n_objects
        assert lo <= len(a.objects) <= hi
        assert world.plausible([o.box for o in a.objects])
        mentioned = {i for r in a.relations for i in r.ids}
        assert mentioned == {o.id for o in a.objects}  # no object left out of the prompt
    assert sample_scene(world, random.Random(1)) != sample_scene(world, random.Random(2))


def test_shapes_world_constraints():
    for i in range(60):
        s = sample_scene(SHAPES, random.Random(i))
        assert len(s.objects) in (2, 3)
        assert len({o.color for o in s.objects}) == len(s.objects)
        assert {o.color for o in s.objects} <= {"red", "green", "blue", "yellow"}
        assert {o.category for o in s.objects} <= {"circle", "square", "triangle"}
        assert {r.predicate for r in s.relations} <= {"left_of", "right_of", "above", "below"}


def test_general_world_uses_every_relation_attributes_counts_and_settings():
    preds, counts, attrs, settings, sizes = Counter(), Counter(), Counter(), set(), Counter()
    for i in range(300):
        s = sample_scene(GENERAL, random.Random(i))
        preds.update(r.predicate for r in s.relations)
        counts.update(o.count for o in s.objects)
        attrs.update(bool(o.size or o.material) for o in s.objects)
        settings.add(s.setting)
        sizes[len(s.objects)] += 1
    assert set(preds) == set(PREDICATES) == set(PREDICATES_2D + PREDICATES_3D)
    assert counts[2] + counts[3] > 0 and attrs[True] > 0 and len(settings) > 5
    assert set(sizes) == {2, 3, 4, 5, 6}


@pytest.mark.parametrize("world", [SHAPES, GENERAL], ids=lambda w: w.name)
def test_perturbation_changes_exactly_k_relations_and_keeps_the_rest(world):
    ops, ks = Counter(), Counter()
    for i in range(80):
        scene = sample_scene(world, random.Random(i))
        k = 1 + i % min(3, len(scene.relations))
        p = perturb(scene, world, random.Random(1000 + i), k)
        if p is None:
            continue
        assert p.count == k == len({c.index for c in p.changes})
        changed = {c.index for c in p.changes}
        for j, rel in enumerate(scene.relations):
            boxes = [p.scene.obj(x).box for x in rel.ids]
            # In the perturbed layout: changed relations clearly fail, every other one clearly still holds.
            assert truth(rel.predicate, boxes) is (False if j in changed else True)
            if j not in changed:
                assert p.scene.relations[j] == rel
        assert p.scene.holds()  # the perturbed prompt is true of the perturbed layout
        for c in p.changes:
            assert p.scene.relations[c.index] == c.after != c.before
        ops.update(c.op for c in p.changes)
        ks[k] += 1
        assert perturb(scene, world, random.Random(1000 + i), k) == p  # deterministic
    assert set(ops) == set(OPS)
    assert ks[1] > 10 and ks[2] > 5


def test_perturbed_prompt_differs_only_in_changed_clauses():
    import re

    def clauses(text):  # articles aside (a changed clause can move an object's first mention)
        return [re.sub(r"\b(a|an)\b", "the", c) for c in text.split(", ")]

    n = 0
    for i in range(40):
        scene = sample_scene(SHAPES, random.Random(i))
        p = perturb(scene, SHAPES, random.Random(i), 1)
        if p is None:
            continue
        a, b = clauses(plain_prompt(scene)), clauses(plain_prompt(p.scene))
        idx = p.changes[0].index
        assert [x for j, x in enumerate(a) if j != idx] == [x for j, x in enumerate(b) if j != idx]
        assert a[idx] != b[idx]
        n += 1
    assert n > 30


def test_templates_short_long_and_shared_choices():
    scene = sample_scene(GENERAL, random.Random(7))
    while len(scene.relations) < 3:
        scene = sample_scene(GENERAL, random.Random(len(scene.relations) + 100))
    rng = random.Random(0)
    texts = {style: render(scene, sample_choices(rng, len(scene.relations), (style,)))
             for style in ("plain", "sentences", "there_is", "setting", "long")}
    assert len(set(texts.values())) == 5
    assert texts["long"].count(".") >= len(scene.relations) + 2  # multi-sentence
    assert scene.setting in texts["long"] and scene.setting in texts["setting"]
    for obj in scene.objects:
        assert obj.color in texts["long"]
    # Same choices for prompt and perturbed prompt: a rendered pair differs only where relations changed.
    p = perturb(scene, GENERAL, random.Random(3), 1)
    choices = sample_choices(random.Random(5), len(scene.relations), ("sentences",))
    before, after = render(scene, choices).split(". "), render(p.scene, choices).split(". ")
    assert sum(x != y for x, y in zip(before, after, strict=True)) == 1
    with pytest.raises(ValueError, match="unknown prompt style"):
        render(scene, PromptChoices("haiku", ()))


def test_every_predicate_has_phrases_and_plain_form_first():
    assert set(PHRASES) == set(PREDICATES)
    assert PHRASES["left_of"][0] == "to the left of" and PHRASES["above"][0] == "above"
