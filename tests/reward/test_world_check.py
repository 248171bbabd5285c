"""The built-in shapes scorer says when an image or a prompt is outside its world (issue 12, newcomer finding)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from training.reward import load_scorer
from training.reward.__main__ import main
from training.reward.world_check import image_problem

PROMPT = "a red circle to the left of a blue square"


def shapes_picture() -> Image.Image:
    from training.dataset.scene import Scene
    from training.dataset.shapes_render import render_shapes

    scene = Scene.from_dict({"world": "shapes", "objects": [
        {"id": "a", "category": "circle", "color": "red", "box": [0.1, 0.4, 0.35, 0.65]},
        {"id": "b", "category": "square", "color": "blue", "box": [0.6, 0.4, 0.85, 0.65]}],
        "relations": [{"subject": "a", "predicate": "left_of", "objects": ["b"]}]})
    return render_shapes(scene, size=64)


def photo_like(seed: int = 0) -> Image.Image:
    """A stand-in for a photo: smooth colour fields (sky, grass, skin tones) with fine texture everywhere."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:256, 0:256] / 255.0
    img = np.stack([0.55 + 0.3 * x, 0.45 + 0.2 * y, 0.35 + 0.25 * (1 - y)], -1)
    img += rng.normal(0, 0.08, img.shape)
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
    ImageDraw.Draw(pil).ellipse([80, 40, 170, 200], fill=(200, 160, 140))
    return pil


def test_renders_pass_and_photos_do_not():
    assert image_problem(shapes_picture()) == ""
    assert image_problem(shapes_picture().resize((512, 512))) == ""
    assert image_problem(photo_like()) != ""
    assert "background is dark" in image_problem(Image.new("RGB", (64, 64), (10, 10, 10)))


@pytest.fixture(scope="module")
def shapes():
    return load_scorer("shapes")


def test_the_result_flags_out_of_world_images_and_words(shapes):
    result = shapes.score([shapes_picture(), photo_like(), shapes_picture()],
                          [PROMPT, PROMPT, "a girl in a pink dress to the left of a dog"])
    rows = result.rows()
    assert [r["out_of_world"] for r in rows] == [False, True, True]
    assert "image is far from the shapes world" in rows[1]["warning"]
    assert "words the shapes scorer does not know (girl, in, pink, dress, dog)" in rows[2]["warning"]
    assert "warning" not in rows[0]


def test_the_cli_warns_on_stderr(tmp_path, capsys):
    photo = tmp_path / "photo.png"
    photo_like().save(photo)
    assert main(["score", "--model", "shapes", "--prompt", PROMPT, str(photo), "--json"]) == 0
    captured = capsys.readouterr()
    assert f"warning: {photo}: the image is far from the shapes world" in captured.err
    assert '"out_of_world": true' in captured.out


def test_node_text_carries_the_warning():
    from nodes.logic.scoring import warning_lines

    assert warning_lines(["", ""]) == []
    assert warning_lines(["w", "w"]) == ["warning (every image): w; the scores below mean little"]
    assert warning_lines(["", "x"]) == ["warning (image 1): x; its score means little"]
