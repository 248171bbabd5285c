"""Paired win rates, their bootstrap intervals, the scorer's confidence and the pairwise judge's preference, on
hand-made scores."""

from __future__ import annotations

import numpy as np
import pytest

from training.grpo.evaluate.statistics import (
    bootstrap_interval,
    judge_summary,
    pair_summary,
    per_prompt_wins,
    variant_summary,
)


def test_per_prompt_wins_count_ties_as_half_and_pair_images_by_noise():
    a = np.array([[0.0, 1.0], [2.0, 2.0], [5.0, 0.0]])
    b = np.array([[1.0, 0.0], [2.0, 3.0], [6.0, 1.0]])
    assert per_prompt_wins(a, b).tolist() == [0.5, 0.75, 1.0]


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible():
    values = np.random.default_rng(1).random(200)
    low, high = bootstrap_interval(values)
    assert low < values.mean() < high and high - low < 0.1
    assert bootstrap_interval(values) == (low, high)
    assert bootstrap_interval(np.ones(10)) == (1.0, 1.0)


def test_pair_summary_win_rate_gain_and_decisive_share():
    a = np.zeros((40, 1))
    b = np.concatenate([np.full((30, 1), 1.0), np.full((10, 1), -0.01)])
    s = pair_summary(a, b, np.full((40, 1), 0.1), np.full((40, 1), 0.1))
    assert s["win_rate"] == 0.75 and s["low"] < 0.75 < s["high"] and s["prompts"] == 40
    assert s["mean_gain"] == pytest.approx(0.7475)
    assert s["decisive_share"] == 0.75  # a gain of 1 with stds 0.1 decides; -0.01 does not
    assert "decisive_share" not in pair_summary(a, b, None, None)


def test_confident_share_needs_every_image_of_a_prompt_and_is_none_without_stds():
    mean = np.zeros((4, 2))
    std = np.array([[0.5, 0.5], [0.5, 2.0], [1.0, 1.0], [3.0, 3.0]])
    assert variant_summary(mean, std)["confident_share"] == 0.5
    assert variant_summary(mean, std, confident_std=5.0)["confident_share"] == 1.0
    assert variant_summary(mean, None)["confident_share"] is None


def test_judge_summary_counts_a_preference_of_one_half_as_a_tie():
    s = judge_summary(np.array([[0.9], [0.5], [0.2], [0.7]]))
    assert s["win_rate"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert s["mean_preference"] == pytest.approx(0.575)
