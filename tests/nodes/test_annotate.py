import json

import pytest
import torch

from nodes.logic.annotate import badge_payload, draw_badges, format_score, score_lines


def test_badge_is_drawn_in_the_top_left_corner_only_on_a_copy():
    images = torch.full((2, 96, 128, 3), 0.8)
    before = images.clone()
    out = draw_badges(images, [format_score(1.234, 0.5), format_score(-2.0, 0.01)])
    assert out.shape == images.shape and out.dtype == torch.float32
    assert torch.equal(images, before)
    changed = (out - images).abs().sum(-1) > 0.05
    for i in range(2):
        ys, xs = changed[i].nonzero(as_tuple=True)
        assert ys.numel() > 50  # text and box are there
        assert ys.max() < 96 // 2 and xs.max() < 128  # within the top band
        assert not changed[i, -10:, :].any()  # the bottom of the image is untouched
    # different labels give different pixels
    assert not torch.equal(out[0], out[1])


def test_badge_on_tiny_and_rgba_images():
    out = draw_badges(torch.rand(1, 8, 8, 4), ["0.1 ± 0.2"])
    assert out.shape == (1, 8, 8, 3)


def test_bad_shapes_and_label_counts():
    with pytest.raises(ValueError, match="IMAGE batch"):
        draw_badges(torch.zeros(8, 8, 3), ["x"])
    with pytest.raises(ValueError, match="2 labels for 1 images"):
        draw_badges(torch.zeros(1, 8, 8, 3), ["a", "b"])


def test_payload_is_json_and_carries_rank_index_and_prompt():
    rows = badge_payload(torch.tensor([2.5, 1.0]), torch.tensor([0.1, 0.3]), indices=[4, 0], prompts=["p4", "p0"],
                         utility=[2.4, 0.7])
    assert json.loads(json.dumps(rows)) == rows
    assert rows[0] == {"position": 0, "index": 4, "mean": 2.5, "std": pytest.approx(0.1), "utility": 2.4,
                       "prompt": "p4"}
    assert rows[1]["index"] == 0


def test_score_lines():
    assert score_lines([1.0], [0.25]) == ["image 0: 1.000 ± 0.250"]
    assert score_lines([1.0, 0.5], [0.0, 0.1], indices=[3, 1], prompts=["a", "b"])[1] == \
        "#2 (image 1): 0.500 ± 0.100  'b'"
