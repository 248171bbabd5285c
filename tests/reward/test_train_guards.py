"""Reward training never deletes a user's files, never runs twice on one folder, stops at the first NaN,
resumes with the settings it is given, and finds broken images before training (issue 12)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from training.common.finite import NonFiniteError
from training.common.run_folder import RunFolderError, exclusive_lock
from training.reward.__main__ import main
from training.reward.train.checkpoint import list_checkpoints
from training.reward.train.metrics import read_metrics
from training.reward.train.pairs import PairsFileError
from training.reward.train.train_config import load_config
from training.reward.train.trainer import train

from .reward_pairs import make_pairs, single_thread  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("guard-pairs"), n=16)


def tiny_config(out, data, **fields):
    overrides = {"data.train": str(data), "output.dir": str(out), "output.progress": False,
                 "train.steps": 2, "train.batch_size": 4, "train.micro_batch_size": 2, "train.warmup_steps": 1,
                 "output.eval_every": 2, "output.checkpoint_every": 1, "data.val_pairs": 4}
    overrides.update(fields)
    return load_config(preset="tiny", overrides=overrides)


def test_a_folder_with_someones_scorer_and_base_is_refused_untouched(tmp_path, pairs_file, capsys):
    for name in ("scorer", "base"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "weights.safetensors").write_text(f"the user's {name}")
    rc = main(["train", "--preset", "tiny", "--data", str(pairs_file), "--out", str(tmp_path), "--steps", "1"])
    assert rc == 2
    assert "is not empty and is not a reward run (found base, scorer)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["base", "scorer", "weights.safetensors",
                                                          "weights.safetensors"]
    assert (tmp_path / "scorer" / "weights.safetensors").read_text() == "the user's scorer"


def test_a_second_training_on_a_locked_folder_fails_at_once(tmp_path, pairs_file):
    with exclusive_lock(tmp_path, "reward training"), pytest.raises(RunFolderError, match="another reward training"):
        train(tiny_config(tmp_path, pairs_file))
    assert not (tmp_path / "metrics.jsonl").exists()


def test_learning_rate_1e30_stops_and_exports_nothing_non_finite(tmp_path, pairs_file, capsys):
    out = tmp_path / "run"
    with pytest.raises(NonFiniteError, match="step [12]: .*training stopped"):
        train(tiny_config(out, pairs_file, **{"train.learning_rate": 1e30, "train.max_grad_norm": 0}))
    for folder in list_checkpoints(out):
        for tensor in load_file(str(folder / "trainable.safetensors")).values():
            assert torch.isfinite(tensor).all()
    if (out / "scorer").exists():
        for file in (out / "scorer").glob("*.safetensors"):
            for tensor in load_file(str(file)).values():
                assert torch.isfinite(tensor).all()
    # the CLI says it in one line with a non-zero exit
    rc = main(["train", "--preset", "tiny", "--data", str(pairs_file), "--out", str(tmp_path / "cli"),
               "--steps", "2", "--set", "train.learning_rate=1e30", "--set", "train.max_grad_norm=0",
               "--set", "output.progress=false", "--set", "train.batch_size=4", "--set", "train.micro_batch_size=2"])
    assert rc == 2 and "training stopped" in capsys.readouterr().err


def test_resume_with_more_steps_applies_the_schedule_of_the_new_length(tmp_path, pairs_file, capsys):
    out = tmp_path / "run"
    train(tiny_config(out, pairs_file, **{"train.steps": 4, "train.schedule": "cosine"}))
    train(tiny_config(out, pairs_file, **{"train.steps": 6, "train.schedule": "cosine"}), resume=True)
    assert "train.steps: 4 -> 6" in capsys.readouterr().out
    records = read_metrics(out / "metrics.jsonl")
    step5 = next(r for r in records if r.get("kind") == "train" and r["step"] == 5)
    assert step5["lr"] > 0  # was 0: the finished 4-step schedule's last lr
    assert any(r.get("kind") == "resume" and "train.steps: 4 -> 6" in r["changed"] for r in records)
    state = json.loads((list_checkpoints(out)[-1] / "state.json").read_text())
    assert state["config"]["train"]["steps"] == 6


def test_resume_with_a_new_learning_rate_uses_it(tmp_path, pairs_file):
    import os

    out = tmp_path / "run"
    fields = {"train.schedule": "constant", "train.warmup_steps": 0}
    old = os.umask(0o022)
    try:
        train(tiny_config(out, pairs_file, **fields))
    finally:
        os.umask(old)
    # every weight file of the run (tiny base, checkpoints, exported scorer) is readable by other accounts
    files = [p for p in out.rglob("*.safetensors")]
    assert {p.parent.parent.name if p.parent.name.startswith("step_") else p.parent.name for p in files} >= {
        "base", "checkpoints", "scorer"}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o644"}, [(p, oct(p.stat().st_mode)) for p in files]
    train(tiny_config(out, pairs_file, **fields, **{"train.steps": 3, "train.learning_rate": 0.25}), resume=True)
    step3 = next(r for r in read_metrics(out / "metrics.jsonl") if r.get("kind") == "train" and r["step"] == 3)
    assert step3["lr"] == 0.25


def test_every_unreadable_image_is_named_before_training(tmp_path):
    data = make_pairs(tmp_path / "pairs", n=8)
    (data.parent / "0003_r.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (data.parent / "0006_c.png").write_bytes((data.parent / "0006_c.png").read_bytes()[:60])
    with pytest.raises(PairsFileError, match=r"2 of 16 training images are unreadable.*0003_r\.png.*0006_c\.png"):
        train(tiny_config(tmp_path / "run", data))
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_one_line_not_a_traceback(tmp_path, pairs_file, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".spatialscore-run.json").write_text('{"stage": "reward"}')
    (out / "metrics.jsonl").symlink_to("/dev/full")  # every write there fails with ENOSPC, like a full disk
    rc = main(["train", "--preset", "tiny", "--data", str(pairs_file), "--out", str(out), "--steps", "1",
               "--set", "output.progress=false", "--set", "train.batch_size=4", "--set", "train.micro_batch_size=2"])
    err = capsys.readouterr().err
    assert rc == 2 and "error: no space left on the device" in err and "Traceback" not in err
