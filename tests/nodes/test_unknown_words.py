"""A scorer that does not know a prompt's words says so where the user looks: the badge ('unknown words', amber),
the first line of the node's text, the preview PNG's metadata; the Loader's tooltip says what the built-ins judge.
On the built-in shapes scorer, as the nodes load it (no ComfyUI needed; the nodes' own wiring is checked against a
real ComfyUI in test_comfyui_integration.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from nodes.logic.annotate import PNG_KEY, badge_label, badge_payload, draw_badges, save_preview_pngs
from nodes.logic.discovery import builtin_scorers
from nodes.logic.loading import load_handle
from nodes.logic.scoring import builtin_scope, score_images, scorer_vocabulary, warning_flag, warning_lines

SHAPES_PROMPT = "a red circle to the left of a blue square"
OUTSIDE = ["a cat on a sofa", "un cercle rouge à gauche d'un carré bleu", "红色圆圈在蓝色方块的左边"]


def shapes_picture() -> torch.Tensor:
    """The shapes world's own render of SHAPES_PROMPT, as a ComfyUI IMAGE [1, H, W, 3]."""
    from training.dataset.scene import Scene
    from training.dataset.shapes_render import render_shapes

    scene = Scene.from_dict({"world": "shapes", "objects": [
        {"id": "a", "category": "circle", "color": "red", "box": [0.1, 0.4, 0.35, 0.65]},
        {"id": "b", "category": "square", "color": "blue", "box": [0.6, 0.4, 0.85, 0.65]}],
        "relations": [{"subject": "a", "predicate": "left_of", "objects": ["b"]}]})  # fmt: skip
    pixels = np.asarray(render_shapes(scene, size=64).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels)[None]


@pytest.fixture(scope="module")
def shapes():
    return load_handle("shapes", [], batch_size=8)


def test_prompts_outside_the_shapes_world_are_flagged_unknown_words(shapes):
    images = shapes_picture().expand(len(OUTSIDE) + 1, -1, -1, -1)
    table = score_images(shapes, images, "\n".join([SHAPES_PROMPT, *OUTSIDE]), "one per line")
    assert torch.isfinite(table.mean).all()  # it still gives numbers: the flags are what tell the user
    assert [warning_flag(w) for w in table.warnings] == ["", "unknown words", "unknown words", "unknown words"]
    assert "(cat, on, sofa)" in table.warnings[1]


def test_the_warning_heads_the_text_once_for_a_batch_of_one_prompt(shapes):
    table = score_images(shapes, shapes_picture().expand(3, -1, -1, -1), "a cat on a sofa")
    assert warning_lines(table.warnings) == [
        "warning (every image): the prompt has words the shapes scorer does not know (cat, on, sofa); the scores below "
        "mean little"]  # fmt: skip
    mixed = warning_lines(["", table.warnings[0]])
    assert mixed == [f"warning (image 1): {table.warnings[0]}; its score means little"]


def test_badge_records_carry_the_warning_and_its_short_flag():
    warning = "the prompt has words the shapes scorer does not know (cat, sofa)"
    rows = badge_payload([1.5, 0.5], [0.1, 0.2], prompts=["a cat on a sofa", SHAPES_PROMPT], warnings=[warning, ""])
    assert rows[0]["flag"] == "unknown words" and rows[0]["warning"] == warning
    assert "flag" not in rows[1] and "warning" not in rows[1]
    assert json.loads(json.dumps(rows)) == rows
    both = warning + "; the image is far from the shapes world: it is textured like a photo"
    assert warning_flag(both) == "unknown words, unfamiliar image"


def test_the_baked_badge_reads_unknown_words_in_amber():
    image = torch.full((1, 128, 128, 3), 0.9)
    plain = draw_badges(image, [badge_label(1.5, 0.1)])
    warned = draw_badges(image, [badge_label(1.5, 0.1, "the prompt has words the shapes scorer does not know (cat)")],
                         warned=[True])  # fmt: skip
    assert badge_label(1.5, 0.1, "... does not know (cat)") == "1.500 ± 0.100\nunknown words"
    r, g, b = (warned[0, 1, 1] * 255).round().tolist()
    assert r > g > b + 40  # amber box
    assert (plain[0, 1, 1] * 255).round().tolist()[0] < 100  # dark box
    rows_with_text = lambda out: int(((out[0] - image[0]).abs().sum(-1) > 0.05).any(-1).sum())  # noqa: E731
    assert rows_with_text(warned) > rows_with_text(plain)  # a second line under the score


def test_the_preview_png_carries_the_warning_in_its_metadata(tmp_path):
    warning = "the prompt has words the shapes scorer does not know (红, 色)"
    rows = badge_payload([1.5, 0.5], [0.1, 0.2], prompts=["红色圆圈", SHAPES_PROMPT], warnings=[warning, ""])
    names = save_preview_pngs(torch.rand(2, 16, 16, 3), rows, tmp_path / "temp", "preview")
    assert names == ["preview_00000.png", "preview_00001.png"]
    with Image.open(tmp_path / "temp" / names[0]) as png:
        record = json.loads(png.text[PNG_KEY])
    assert record["warning"] == warning and record["flag"] == "unknown words" and record["prompt"] == "红色圆圈"
    with Image.open(tmp_path / "temp" / names[1]) as png:
        assert "warning" not in json.loads(png.text[PNG_KEY])
    with pytest.raises(ValueError, match="1 badge records for 2 images"):
        save_preview_pngs(torch.rand(2, 16, 16, 3), rows[:1], tmp_path, "x")


def test_the_loaders_tooltip_lists_exactly_the_words_the_builtins_know(shapes):
    folders = builtin_scorers()
    scope = builtin_scope(folders)
    assert scope.startswith("'shapes' and 'shapes-gen' judge only the shapes world")
    assert "'unknown words'" in scope
    words = scope.split("with these words: ", 1)[1].split(".", 1)[0].split(", ")
    assert {"left", "right", "above", "below", "circle", "square", "triangle", "red", "yellow"} <= set(words)
    assert words == sorted({w for f in folders for w in scorer_vocabulary(f)})
    # every listed word is one the scorer checks prompts against: a prompt of all of them is not flagged
    table = score_images(shapes, shapes_picture(), " ".join(words))
    assert table.warnings == ("",)
    assert builtin_scope([]) == ""
