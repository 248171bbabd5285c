"""group_advantages on hand-made groups: normalisation, top-k / bottom-k selection, ties, global std."""

from __future__ import annotations

import math

import pytest
import torch

from training.grpo.advantages import group_advantages, group_stats


def test_group_normalisation_uses_population_std():
    rewards = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 10.0, 10.0, 14.0]])
    adv, keep = group_advantages(rewards)
    std0 = math.sqrt(1.25)  # ddof 0 of 1,2,3,4
    expected0 = [(r - 2.5) / (std0 + 1e-4) for r in (1, 2, 3, 4)]
    std1 = math.sqrt(3.0)  # ddof 0 of 10,10,10,14 (mean 11)
    expected1 = [(r - 11) / (std1 + 1e-4) for r in (10, 10, 10, 14)]
    torch.testing.assert_close(adv, torch.tensor([expected0, expected1]))
    assert keep.all()


def test_global_std_divides_by_the_std_of_all_rewards():
    rewards = torch.tensor([[0.0, 2.0], [10.0, 20.0]])
    adv, _ = group_advantages(rewards, std="global", eps=0.0)
    g = rewards.flatten().std(correction=0).item()  # mean 8, population std of 0,2,10,20
    torch.testing.assert_close(adv, torch.tensor([[-1.0, 1.0], [-5.0, 5.0]]) / g)


def test_top_k_keeps_the_extremes_of_each_group():
    rewards = torch.tensor([[0.5, 0.9, 0.1, 0.7, 0.3, 0.2], [6.0, 1.0, 5.0, 2.0, 4.0, 3.0]])
    adv, keep = group_advantages(rewards, top_k=2)
    assert keep.tolist() == [[False, True, True, True, False, True], [True, True, True, True, False, False]]
    full, _ = group_advantages(rewards)
    torch.testing.assert_close(adv[keep], full[keep])  # kept samples keep their group-normalised advantage
    assert torch.all(adv[~keep] == 0)


def test_ties_go_to_the_lower_index_and_exactly_two_k_are_kept():
    rewards = torch.tensor([
        [3.0, 1.0, 3.0, 3.0, 0.0, 5.0],  # top: 5 (i5), then the first 3 (i0); bottom: 0 (i4), 1 (i1)
        [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],  # a zero-std group: top i0, i1; bottom among the rest: i2, i3
        [1.0, 1.0, 1.0, 1.0, 9.0, 9.0],  # top i4, i5; bottom i0, i1
    ])  # fmt: skip
    adv, keep = group_advantages(rewards, top_k=2)
    assert keep.tolist() == [
        [True, True, False, False, True, True],
        [True, True, True, True, False, False],
        [True, True, False, False, True, True],
    ]
    assert keep.sum(dim=1).tolist() == [4, 4, 4]
    assert torch.all(adv[1] == 0)  # equal rewards carry no signal


def test_no_filter_when_top_k_is_none_or_covers_the_group():
    rewards = torch.rand(3, 6, generator=torch.Generator().manual_seed(0))
    for top_k in (None, 3, 4):
        adv, keep = group_advantages(rewards, top_k=top_k)
        assert keep.all()
        torch.testing.assert_close(adv, group_advantages(rewards)[0])


def test_bad_inputs_are_refused_with_clear_errors():
    with pytest.raises(ValueError, match=r"shape \[P, G\]"):
        group_advantages(torch.zeros(6))
    with pytest.raises(ValueError, match="std must be one of"):
        group_advantages(torch.zeros(2, 3), std="batch")
    with pytest.raises(ValueError, match="top_k must be None"):
        group_advantages(torch.zeros(2, 6), top_k=0)


def test_group_stats_counts_zero_std_groups_and_kept_rewards():
    rewards = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 2.0, 3.0]])
    _, keep = group_advantages(rewards, top_k=1)
    stats = group_stats(rewards, keep)
    assert stats["zero_std_group_frac"] == 0.5
    assert stats["kept_frac"] == 0.5
    assert stats["kept_reward_mean"] == pytest.approx((1.0 + 1.0 + 0.0 + 3.0) / 4)
    assert stats["reward_mean"] == pytest.approx(1.25)
