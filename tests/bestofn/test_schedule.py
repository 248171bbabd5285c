"""Pruning schedules: syntax, shrinking, fractions inside (0, 1), steps, and the forward count they cost."""

from __future__ import annotations

import pytest

from training.bestofn.config import BestOfNConfig
from training.bestofn.schedule import ScheduleError, Stage, forwards, parse_schedule, resolve_schedule


def test_parses_points_in_order():
    assert parse_schedule("8@0.25, 3@0.5") == [(8, 0.25), (3, 0.5)]
    assert parse_schedule("none") == parse_schedule("") == parse_schedule(None) == []


@pytest.mark.parametrize("text, words", [
    ("8", "KEEP@FRACTION"),
    ("a@0.5", "whole KEEP"),
    ("4@0", "outside (0, 1)"),
    ("4@1", "outside (0, 1)"),
    ("4@1.5", "outside (0, 1)"),
    ("4@nan", "outside (0, 1)"),
    ("0@0.5", "at least 1"),
    ("4@0.25,4@0.5", "does not shrink"),
    ("4@0.25,6@0.5", "does not shrink"),
    ("4@0.5,2@0.25", "fractions must increase"),
])
def test_bad_schedules_name_the_problem(text, words):
    with pytest.raises(ScheduleError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_schedule(text)


def test_fractions_map_to_steps():
    assert resolve_schedule("4@0.17,2@0.5", 16, 1, 6) == [Stage(4, 0.17, 1), Stage(2, 0.5, 3)]
    assert resolve_schedule("4@0.01", 16, 1, 6) == [Stage(4, 0.01, 1)]  # at least one step done
    assert resolve_schedule("4@0.99", 16, 1, 6) == [Stage(4, 0.99, 5)]  # never after the last step


def test_resolve_refuses_what_only_n_k_and_steps_reveal():
    with pytest.raises(ScheduleError, match="does not shrink the 16"):
        resolve_schedule("16@0.5", 16, 1, 6)
    with pytest.raises(ScheduleError, match="fewer candidates than --keep 3"):
        resolve_schedule("2@0.5", 16, 3, 6)
    with pytest.raises(ScheduleError, match="1 <= K <= N"):
        resolve_schedule("none", 4, 5, 6)
    with pytest.raises(ScheduleError, match="same step"):
        resolve_schedule("8@0.2,4@0.22", 16, 1, 6)
    with pytest.raises(ScheduleError, match="at least 2 sampling steps"):
        resolve_schedule("4@0.5", 16, 1, 1)


def test_forward_counts():
    assert forwards(16, [], 6) == 96
    assert forwards(16, resolve_schedule("4@0.17,2@0.5", 16, 1, 6), 6) == 16 + 4 * 2 + 2 * 3
    assert forwards(1, [], 6) == 6


def test_config_validation_before_loading(tmp_path):
    cfg = BestOfNConfig(model="shapes", scorer="shapes", prompts=tmp_path / "p.txt", out=tmp_path / "o", n=4, keep=5)
    with pytest.raises(ScheduleError, match="--keep 5"):
        cfg.validate()
    cfg = BestOfNConfig(model="shapes", scorer="shapes", prompts=tmp_path / "p.txt", out=tmp_path / "o", n=4,
                        prune="4@0.5")
    with pytest.raises(ScheduleError, match="must shrink"):
        cfg.validate()


def test_default_schedule_only_where_it_fits(tmp_path):
    from training.bestofn.schedule import DEFAULT_SCHEDULE

    def cfg(n, keep):
        return BestOfNConfig(model="m", scorer="s", prompts=tmp_path, out=tmp_path, n=n, keep=keep)

    assert cfg(16, 1).prune == DEFAULT_SCHEDULE == "8@0.34,2@0.5"
    assert cfg(8, 1).prune == "4@0.34,2@0.5" and cfg(16, 4).prune == "8@0.34,4@0.5"
    assert cfg(4, 1).prune == "2@0.5" and cfg(16, 8).prune == "8@0.5"
    assert cfg(2, 1).prune == "none" and cfg(3, 3).prune == "none"
    cfg(2, 1).validate()
    short = cfg(16, 1)
    short.settle_steps(2)  # 0.34 and 0.5 fall on the same step of 2: one point is left
    assert short.prune == "2@0.5"
    short.settle_steps(1)
    assert short.prune == "none"
    explicit = BestOfNConfig(model="m", scorer="s", prompts=tmp_path, out=tmp_path, n=16, prune="4@0.25")
    explicit.settle_steps(2)
    assert explicit.prune == "4@0.25"  # only the default is settled
