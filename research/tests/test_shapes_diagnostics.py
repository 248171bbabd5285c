"""The shapes-world RL diagnostics' own arithmetic: role-swapped twins, the token-set distance and the split of an
outcome's variance into what the SDE noise and what the initial noise decide."""

from __future__ import annotations

import pytest
import torch

from research.shapes_grpo.shapes_noise_split import variance_split
from research.shapes_grpo.shapes_order_probe import set_distance, swapped


def test_swapped_exchanges_the_roles_of_a_one_relation_prompt():
    assert swapped("a red circle to the left of a blue square") == "a blue square to the left of a red circle"
    assert swapped("a green triangle above a yellow circle") == "a yellow circle above a green triangle"
    # the twin contradicts the prompt: the oracle judges the same picture oppositely
    from training.dataset.oracle import parse_prompt

    a, b = parse_prompt("a red circle below a blue square")[0], parse_prompt(swapped("a red circle below a blue square"))[0]
    assert (a.subject, a.object) == (b.object, b.subject) and a.predicate == b.predicate
    assert swapped("a green square above a yellow circle, and a blue square below the green square") is None


def test_set_distance_is_blind_to_order_and_sees_content():
    x = torch.randn(6, 8)
    assert set_distance(x, x[torch.randperm(6)]) == pytest.approx(0.0, abs=1e-6)
    assert set_distance(x, torch.randn(6, 8)) > 0.3


def test_variance_split_separates_initial_noise_from_step_noise():
    # decided by x_T alone: every row constant, rows differ
    by_start = [[torch.tensor([1, 1, 1]), torch.tensor([0, 0, 0])]] * 4
    assert variance_split(by_start)["within_share"] == pytest.approx(0.0)
    # decided by the step noise alone: every row holds the same mix
    by_steps = [[torch.tensor([1, 0, 1, 0]), torch.tensor([0, 1, 0, 1])]] * 4
    assert variance_split(by_steps)["within_share"] == pytest.approx(1.0)
    # rows of unequal length (placement among drawn pictures), and a prompt with no variance at all
    mixed = [[torch.tensor([1, 0]), torch.tensor([1])], [torch.tensor([1, 1])]]
    share = variance_split(mixed)["within_share"]
    assert 0.0 < share < 1.0
