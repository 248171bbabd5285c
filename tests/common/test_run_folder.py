"""Output folders of training runs: only empty folders or the stage's own runs, one run at a time."""

from __future__ import annotations

import pytest

from training.common.run_folder import (
    MARKER,
    RunFolderError,
    check_run_folder,
    claim_run_folder,
    exclusive_lock,
    owned_run_folder,
)


def test_foreign_folder_is_refused_untouched_and_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "metrics.jsonl").write_text("user data\n")
    with pytest.raises(RunFolderError, match=r"config\.json, metrics\.jsonl") as exc:
        with owned_run_folder(tmp_path, "grpo", "GRPO run"):
            pass
    assert str(tmp_path) in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "metrics.jsonl"]  # no marker, no .lock


def test_dot_entries_count_as_content(tmp_path):
    (tmp_path / ".keep.tmp").write_text("mine")
    with pytest.raises(RunFolderError, match=r"\.keep\.tmp"):
        check_run_folder(tmp_path, "grpo")


def test_empty_or_missing_folder_is_claimed_and_then_own(tmp_path):
    out = tmp_path / "new" / "run"
    claim_run_folder(out, "reward")
    assert (out / MARKER).is_file()
    (out / "metrics.jsonl").write_text("{}\n")
    claim_run_folder(out, "reward")  # its own run: accepted again
    with pytest.raises(RunFolderError, match="holds a reward run, not a grpo run"):
        claim_run_folder(out, "grpo")


def test_legacy_runs_are_recognised_by_the_stage(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    claim_run_folder(tmp_path, "grpo", legacy_run=lambda p: (p / "checkpoints").is_dir())
    assert (tmp_path / MARKER).is_file()


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        check_run_folder(tmp_path / "f", "grpo")


def test_second_holder_of_the_lock_fails_at_once(tmp_path):
    with owned_run_folder(tmp_path, "grpo", "GRPO run"):
        with pytest.raises(RunFolderError, match="another GRPO run is writing"):
            with owned_run_folder(tmp_path, "grpo", "GRPO run"):
                pass
    with exclusive_lock(tmp_path, "GRPO run"):  # released after the block
        pass
