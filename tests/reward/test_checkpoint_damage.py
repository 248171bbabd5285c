"""Reward training: a damaged checkpoint file and a disk that fills while a checkpoint is written each end the run
with one line and exit 2, naming the file or folder and what to do; the previous checkpoint stays whole and no
temporary folder is left behind."""

from __future__ import annotations

import errno
import shutil

import pytest
from safetensors import SafetensorError

from training.common import checkpointing
from training.reward.__main__ import main
from training.reward.train.checkpoint import check_resumable, list_checkpoints

from .reward_pairs import make_pairs, single_thread  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("damage-pairs"), n=16)


def _train(out, data, steps, *extra) -> list[str]:
    return ["train", "--preset", "tiny", "--data", str(data), "--out", str(out), "--steps", str(steps),
            "--set", "output.progress=false", "--set", "train.batch_size=4", "--set", "train.micro_batch_size=2",
            "--set", "output.checkpoint_every=1", "--set", "output.eval_every=2", "--set", "data.val_pairs=4", *extra]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_an_empty_trainable_file_is_named_before_the_model_loads(tmp_path, pairs_file, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(_train(out, pairs_file, 2)) == 0
    first, second = list_checkpoints(out)
    (second / "trainable.safetensors").write_bytes(b"")
    capsys.readouterr()
    with monkeypatch.context() as m:
        m.setattr("training.reward.train.trainer.build_model", lambda *a, **k: pytest.fail("loaded the model first"))
        assert main(_train(out, pairs_file, 3, "--resume")) == 2
    assert _one_error(capsys) == (
        f"error: {second / 'trainable.safetensors'} is damaged (Error while deserializing header: header too "
        f"small): delete the folder {second} (or move it aside) and rerun with --resume, which then continues from "
        f"{first.name}")
    shutil.rmtree(second)  # doing what it says works
    assert main(_train(out, pairs_file, 3, "--resume")) == 0
    assert [p.name for p in list_checkpoints(out)] == ["step_000002", "step_000003"]


@pytest.mark.parametrize("kind", ["safetensors", "state.json"])
def test_a_full_disk_while_a_checkpoint_is_written(tmp_path, pairs_file, capsys, monkeypatch, kind):
    out = tmp_path / "run"
    real_save, real_state = checkpointing.save_file, checkpointing.write_state

    def save_file(tensors, filename, *args, **kwargs):  # what a real full disk gives: no OSError at all
        if ".step_000002." in str(filename) and str(filename).endswith("trainable.safetensors"):
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real_save(tensors, filename, *args, **kwargs)

    def write_state(folder, state):
        if ".step_000002." in folder.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(folder / "state.json"))
        return real_state(folder, state)

    with monkeypatch.context() as m:
        if kind == "safetensors":
            m.setattr(checkpointing, "save_file", save_file)
        else:
            m.setattr(checkpointing, "write_state", write_state)
        assert main(_train(out, pairs_file, 2)) == 2
    assert _one_error(capsys) == (
        f"error: no space left on the device writing {out / 'checkpoints' / 'step_000002'}: free some space and "
        "rerun with --resume (checkpoints are written whole, so the ones already there are intact)")
    assert [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")] == []
    (first,) = list_checkpoints(out)
    assert first.name == "step_000001"
    check_resumable(first)
    assert main(_train(out, pairs_file, 2, "--resume")) == 0  # once there is space again
    assert [p.name for p in list_checkpoints(out)] == ["step_000001", "step_000002"]
