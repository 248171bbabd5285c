"""The pruner's bookkeeping: who survives, who was dropped when with what score, and the rank correlation."""

from __future__ import annotations

import pytest
import torch

from training.bestofn.pruning import Pruner, spearman
from training.bestofn.schedule import Stage


def test_keeps_the_best_in_batch_order_and_records_the_dropped():
    pruner = Pruner(5, [Stage(3, 0.3, 1), Stage(1, 0.6, 2)], 4)
    assert pruner.after_step(1, torch.tensor([0.1, 0.9, 0.5, 0.9, 0.2])) == [1, 2, 3]
    assert pruner.alive == [1, 2, 3]
    assert [(d["candidate"], d["step"], round(d["score"], 3)) for d in pruner.dropped] == [(4, 1, 0.2), (0, 1, 0.1)]
    assert pruner.after_step(2, torch.tensor([0.0, 0.7, 0.6])) == [1]  # positions in the current batch
    assert pruner.alive == [2]
    assert pruner.after_step(3, torch.tensor([1.0])) is None  # not a pruning point


def test_ties_keep_candidate_order():
    pruner = Pruner(4, [Stage(2, 0.5, 1)], 2)
    assert pruner.after_step(1, torch.tensor([0.5, 0.5, 0.5, 0.5])) == [0, 1]


def test_final_ranks_survivors_by_final_score():
    pruner = Pruner(3, [], 2)
    assert pruner.final(torch.tensor([0.2, 0.8, 0.5]), 2) == [(1, 1, pytest.approx(0.8)), (2, 2, pytest.approx(0.5))]


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert abs(spearman([1, 2, 3, 4], [1, 3, 2, 4]) - 0.8) < 1e-9
