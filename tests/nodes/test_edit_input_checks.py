"""Edit nodes refuse, with one clear message, what would otherwise be scored or drawn wrongly without a word: a
source and edited images of different sizes (the scorer would resize one), and edit regions with NaN
coordinates."""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest
import torch

from nodes.logic.edit_scoring import draw_regions, load_edit_handle, score_edit_batch

from ..threads import one_torch_thread


def _image(pil) -> torch.Tensor:
    return torch.from_numpy(np.asarray(pil.convert("RGB")).astype(np.float32) / 255.0)


@pytest.fixture(scope="module")
def example():
    from training.dataset.edit.edits import sample_example
    from training.dataset.edit.scene import render

    ex = sample_example(random.Random(3), "wrong_direction", "move")
    return ex.instruction.text, _image(render(ex.source))[None], _image(render(ex.chosen))[None]


@pytest.fixture(scope="module")
def handle():
    with one_torch_thread():
        return load_edit_handle("shapes-edit", [])


def test_a_source_of_another_size_is_refused_before_the_scorer_loads(handle, example):
    instruction, source, edited = example
    loaded = []
    handle = dataclasses.replace(handle, placement=type("P", (), {"load": lambda self, s: loaded.append(s),
                                                                  "offload": lambda self, s: None})())
    with pytest.raises(ValueError, match=r"^source is 64x64 but edited is 64x48 \(width x height\): an edit keeps "
                                         r"the source's size"):
        score_edit_batch(handle, source, edited[:, :48], instruction)
    assert loaded == []
    with one_torch_thread():
        table = score_edit_batch(handle, source, edited, instruction)  # the same sizes still score
    assert math.isfinite(table.mean[0])


def test_a_nan_edit_region_is_one_clear_error(handle, example):
    instruction, source, edited = example
    scorer = handle.scorer

    class NaNRegions:  # the real scorer, with a region head that went NaN
        mode = "reward"

        def score(self, *args, **kwargs):
            result = scorer.score(*args, **kwargs)
            return dataclasses.replace(result, regions=[[[math.nan, 0.1, 0.5, 0.5]]])

    broken = dataclasses.replace(handle, scorer=NaNRegions())
    with one_torch_thread(), pytest.raises(ValueError, match=r"edit_scorer shapes-edit predicted an unusable edit "
                                                             r"region for edited image 0: box 0 \[nan, 0.1, 0.5, "
                                                             r"0.5\] has NaN or infinite coordinates"):
        score_edit_batch(broken, source, edited, instruction)
    with pytest.raises(ValueError, match="edit regions: edited image 1: box 0 .* has NaN or infinite coordinates"):
        draw_regions(torch.ones(2, 8, 8, 3), [[], [[0.1, 0.1, 0.2, math.nan]]], ["a", "b"])
