"""Training and evaluation read the human verdicts of reviews.jsonl (written by the review page)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training.dataset.review.store import VerdictStore
from training.dataset.stats import dataset_stats
from training.dataset.summary import format_summary
from training.reward.cli.evaluate import select_pairs
from training.reward.train.pairs import PairsFileError, read_pairs
from training.reward.train.train_config import load_config
from training.reward.train.trainer import load_data

from ..dataset.helpers import quiet_build, shapes_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory):
    """A 40-pair shapes dataset with verdicts on some train pairs (and an undone one, a skip, a swap)."""
    out = tmp_path_factory.mktemp("reviewed") / "shapes"
    quiet_build(shapes_config(out, pairs=40, seed=11))
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    train = [r["id"] for r in rows if r["split"] == "train"]
    test = [r["id"] for r in rows if r["split"] == "test"]
    store = VerdictStore(out)
    verdicts = {train[0]: "accept", train[1]: "accept", train[2]: "reject", train[3]: "swap", train[4]: "skip",
                train[5]: "accept", test[0]: "reject", test[1]: "accept"}
    for row_id, verdict in verdicts.items():
        store.append(row_id, verdict)
    store.append(train[5], "undo")  # train[5] is back to unreviewed
    return out, rows, train, test


def by_id(rows):
    return {r["id"]: r for r in rows}


def test_default_drops_rejected_and_swaps_swapped(reviewed):
    out, rows, train, _ = reviewed
    pairs = {p.id: p for p in read_pairs(out, split="train")}
    assert train[2] not in pairs and len(pairs) == len(train) - 1
    row = by_id(rows)[train[3]]
    assert pairs[train[3]].chosen == out / row["rejected"] and pairs[train[3]].rejected == out / row["chosen"]
    assert pairs[train[3]].prompt == row["prompt"] and pairs[train[3]].layouts is None
    assert pairs[train[0]].chosen == out / by_id(rows)[train[0]]["chosen"]
    assert {p.id for p in read_pairs(out, split="train", reviews="ignore")} == set(train)


def test_reviewed_only_is_exactly_the_accepted_and_swapped_pairs(reviewed):
    out, _, train, test = reviewed
    assert [p.id for p in read_pairs(out, split="train", reviews="reviewed-only")] == [train[0], train[1], train[3]]
    pairs, split = select_pairs(str(out), "auto", 0, "reviewed-only")
    assert split == "test" and [p.id for p in pairs] == [test[1]]


def test_training_with_reviewed_only_uses_exactly_the_accepted_pairs(reviewed):
    out, _, train, _ = reviewed
    config = load_config(None, "tiny", {"data.train": str(out), "data.reviews": "reviewed-only",
                                        "output.dir": str(out.parent / "run")})
    train_pairs, val_pairs = load_data(config)
    assert [p.id for p in train_pairs] == [train[0], train[1], train[3]]
    assert val_pairs and all(p.split == "val" for p in val_pairs)  # validation: the whole (unrejected) val split


def test_train_cli_flag_reaches_the_data(reviewed):
    out = reviewed[0]
    cmd = [sys.executable, "-m", "training.reward", "train", "--preset", "tiny", "--data", str(out), "--out",
           str(out.parent / "run-cli"), "--dry-run"]
    only = subprocess.run(cmd + ["--reviewed-only"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert only.returncode == 0, only.stderr
    assert "3 training pairs" in only.stdout and '"reviews": "reviewed-only"' in only.stdout


def test_reviewed_only_without_reviews_names_the_review_command(tmp_path):
    out = tmp_path / "fresh"
    quiet_build(shapes_config(out, pairs=8, seed=2))
    with pytest.raises(PairsFileError, match="has no reviews.jsonl; review the pairs first with `python -m "
                                             "training.dataset review"):
        read_pairs(out, reviews="reviewed-only")
    with pytest.raises(PairsFileError, match="reviews must be one of"):
        read_pairs(out, reviews="sometimes")


def test_stats_reports_the_reviews(reviewed):
    out, rows, _, _ = reviewed
    summary = dataset_stats(out, progress=False)
    assert summary["reviews"] == {"accept": 3, "reject": 2, "swap": 1, "skip": 1, "unreviewed": len(rows) - 7,
                                  "reviewed": 6}
    assert summary["reviews_by_split"]["test"]["reject"] == 1
    assert "human review: 6/40 reviewed: 3 accepted, 2 rejected, 1 swapped; 1 skipped" in format_summary(summary)
