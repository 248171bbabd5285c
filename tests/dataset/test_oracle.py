"""The shapes pixel oracle: prompt parsing, and judging rendered, distorted and imperfect images."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from training.dataset.oracle import PromptParseError, find_objects, judge, parse_prompt
from training.dataset.perturb import perturb
from training.dataset.prompts import plain_prompt, render, sample_choices
from training.dataset.scene import Scene, sample_scene
from training.dataset.shapes_render import render_shapes
from training.dataset.worlds import SHAPES

EXAMPLE = "a red circle to the left of a blue square, and a green triangle above the blue square"
DARK = {"red": (150, 20, 30), "green": (20, 100, 40), "blue": (20, 30, 130), "yellow": (200, 160, 0)}
LIGHT = {"red": (255, 99, 71), "green": (50, 205, 50), "blue": (30, 144, 255), "yellow": (240, 230, 110)}
VIVID = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}
OFF_WHITES = [(255, 255, 240), (245, 245, 220), (225, 225, 225), (250, 235, 215)]


def _pairs(n=30, seed=0):
    """(scene, perturbation) pairs of the shapes world with 1-3 changed relations."""
    out = []
    i = 0
    while len(out) < n:
        scene = sample_scene(SHAPES, random.Random(f"{seed}:{i}"))
        k = 1 + i % len(scene.relations)
        p = perturb(scene, SHAPES, random.Random(f"p{seed}:{i}"), k)
        if p is not None:
            out.append((scene, p))
        i += 1
    return out


def _expect(image, scene: Scene, changed: set[int] = frozenset()):
    verdict = judge(image, plain_prompt(scene))
    assert verdict.holds == [j not in changed for j in range(len(scene.relations))], plain_prompt(scene)


def _noise(img, sigma, rng):
    a = np.asarray(img).astype(np.float32) + rng.normal(0, sigma, (img.height, img.width, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def _salt_pepper(img, fraction, rng):
    a = np.asarray(img).copy()
    m = rng.random(a.shape[:2])
    a[m < fraction / 2] = 0
    a[m > 1 - fraction / 2] = 255
    return Image.fromarray(a)


def _jpeg(img, quality=70):
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _gradient_background(size, top, bottom):
    t = np.linspace(0, 1, size)[:, None, None]
    a = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    return np.broadcast_to(a, (size, size, 3))


def test_parse_plain_form():
    rels = parse_prompt(EXAMPLE)
    assert [(r.subject, r.predicate, r.object) for r in rels] == [
        (("red", "circle"), "left_of", ("blue", "square")), (("green", "triangle"), "above", ("blue", "square"))]
    assert [r.text for r in rels] == ["a red circle to the left of a blue square",
                                      "a green triangle above the blue square"]
    # The other shapes templates read the same.
    assert [r.predicate for r in parse_prompt("A red circle is on the left side of a blue square. "
                                              "There is a green triangle positioned above the blue square.")] == [
        "left_of", "above"]


@pytest.mark.parametrize("prompt, message", [
    ("", "empty"),
    ("a purple circle to the left of a blue square", "cannot read clause"),
    ("a red circle on top of a blue square", "cannot read clause"),
    ("a red circle to the left of a blue square, and a red square above the blue square", "two red objects"),
    ("a red circle to the left of the red circle", "itself"),
])
def test_parse_errors_name_the_problem(prompt, message):
    with pytest.raises(PromptParseError, match=message):
        parse_prompt(prompt)


def test_rendered_pairs_judged_exactly_at_several_sizes():
    for size in (32, 64, 200):
        for scene, p in _pairs(25, seed=size):
            changed = {c.index for c in p.changes}
            _expect(render_shapes(scene, size), scene)
            _expect(render_shapes(p.scene, size), scene, changed)  # fails exactly the changed relations
            _expect(render_shapes(p.scene, size), p.scene)  # and satisfies the perturbed prompt


def test_varied_shapes_templates_are_read_like_the_plain_form():
    for scene, p in _pairs(15, seed=9):
        choices = sample_choices(random.Random(1), len(scene.relations), ("plain", "sentences", "there_is"))
        img = render_shapes(p.scene)
        assert judge(img, render(scene, choices)).holds == judge(img, plain_prompt(scene)).holds


@pytest.mark.parametrize("distortion", ["noise", "salt_pepper", "blur", "jpeg", "all"])
def test_robust_to_noise_blur_and_compression(distortion):
    rng = np.random.default_rng(0)
    for scene, p in _pairs(20, seed=1):
        changed = {c.index for c in p.changes}
        for s, ch in ((scene, set()), (p.scene, changed)):
            img = render_shapes(s, 96)
            if distortion in ("noise", "all"):
                img = _noise(img, 14, rng)
            if distortion == "salt_pepper":
                img = _salt_pepper(img, 0.04, rng)
            if distortion in ("blur", "all"):
                img = img.filter(ImageFilter.GaussianBlur(1.5))
            if distortion in ("jpeg", "all"):
                img = _jpeg(img, 60)
            _expect(img, scene, ch)


@pytest.mark.parametrize("palette", [DARK, LIGHT, VIVID], ids=["dark", "light", "vivid"])
def test_robust_to_other_shades_and_off_white_backgrounds(palette):
    rng = np.random.default_rng(1)
    for n, (scene, p) in enumerate(_pairs(16, seed=2)):
        bg = OFF_WHITES[n % len(OFF_WHITES)]
        changed = {c.index for c in p.changes}
        _expect(_noise(render_shapes(scene, 80, bg, palette), 8, rng), scene)
        _expect(_noise(render_shapes(p.scene, 80, bg, palette), 8, rng).filter(ImageFilter.GaussianBlur(1)),
                scene, changed)


def test_gradient_background_and_a_large_image():
    scene, p = _pairs(1, seed=3)[0]
    big = render_shapes(scene, 512, palette=LIGHT)
    a = np.asarray(big).astype(np.float32)
    mask = (np.abs(a - np.asarray((246, 245, 240), np.float32)).sum(axis=2) < 1)[..., None]
    a = np.where(mask, _gradient_background(512, (250, 248, 240), (215, 212, 205)), a)
    _expect(Image.fromarray(a.astype(np.uint8)), scene)


def test_missing_object_fails_its_relations_only():
    scene = sample_scene(SHAPES, random.Random(11))
    while len(scene.objects) < 3:
        scene = sample_scene(SHAPES, random.Random(len(scene.objects) * 7 + 3))
    for gone in scene.objects:
        kept = Scene("shapes", tuple(o for o in scene.objects if o.id != gone.id), (), None)
        verdict = judge(render_shapes(kept), plain_prompt(scene))
        expected = [gone.id not in r.ids for r in scene.relations]
        assert verdict.holds == expected
        assert not verdict.all


def test_other_hues_are_nobodys_and_specks_are_ignored():
    img = Image.new("RGB", (64, 64), (246, 245, 240))
    d = ImageDraw.Draw(img)
    d.rectangle([5, 20, 20, 35], fill=(255, 140, 0))  # orange: neither red nor yellow
    d.rectangle([40, 20, 55, 35], fill=(140, 40, 200))  # purple: neither red nor blue
    for x, y in [(10, 5), (30, 50), (50, 8)]:
        d.point((x, y), fill=(220, 40, 40))  # isolated red pixels
    found = find_objects(img)
    assert all(v is None for v in found.values()), found
    assert judge(img, "a red circle to the left of a blue square").holds == [False]
    # Red touching green, blurred: the seam's in-between hues (yellowish) must not become a yellow object.
    img = Image.new("RGB", (64, 64), (246, 245, 240))
    d = ImageDraw.Draw(img)
    d.rectangle([10, 20, 31, 40], fill=(220, 40, 40))
    d.rectangle([32, 20, 53, 40], fill=(40, 165, 70))
    found = find_objects(img.filter(ImageFilter.GaussianBlur(1.2)))
    assert found["yellow"] is None and found["red"] is not None and found["green"] is not None


def test_accepts_paths_arrays_and_tensors(tmp_path):
    import torch

    scene, _ = _pairs(1, seed=4)[0]
    img = render_shapes(scene)
    img.save(tmp_path / "a.png")
    arr = np.array(img)
    prompt = plain_prompt(scene)
    results = {judge(x, prompt).all for x in (img, tmp_path / "a.png", str(tmp_path / "a.png"), arr,
                                              torch.from_numpy(arr).float()[None] / 255)}
    assert results == {True}
    with pytest.raises(ValueError, match="not found"):
        judge(tmp_path / "missing.png", prompt)
