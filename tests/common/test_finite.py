"""The non-finite guard shared by the trainers."""

from __future__ import annotations

import math

import pytest
import torch

from training.common.finite import NonFiniteError, first_non_finite, require_finite, require_finite_weights


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, torch.tensor([1.0, math.nan])])
def test_non_finite_values_stop_with_the_step_and_what(value):
    with pytest.raises(NonFiniteError, match=r"step 7: the loss (is nan|is inf|is -inf|holds NaN or infinite values); training stopped"):
        require_finite("the loss", value, step=7)


def test_finite_values_pass():
    require_finite("the loss", 1e30, step=1)
    require_finite("rewards", torch.tensor([0.0, -3.0]))


def test_first_non_finite_weight_is_named():
    named = [("a", torch.zeros(2)), ("b", torch.tensor([1.0, math.inf])), ("c", torch.full((1,), math.nan))]
    assert first_non_finite(named) == "b"
    with pytest.raises(NonFiniteError, match="LoRA: b holds NaN"):
        require_finite_weights(named, "LoRA")
