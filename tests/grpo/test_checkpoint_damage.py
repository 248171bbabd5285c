"""A damaged checkpoint file and a disk that fills while a checkpoint is written each end a GRPO run with one line
and exit 2, and lose nothing: the message names the file or folder and says what to do, the previous checkpoint
stays whole and no temporary folder is left behind."""

from __future__ import annotations

import errno

import pytest
from safetensors import SafetensorError

from training.common import checkpointing
from training.grpo import __main__ as cli
from training.grpo.checkpoint import check_compatible, list_checkpoints

from ..threads import one_torch_thread


@pytest.fixture(scope="module")
def models(tiny_flux_dir, tiny_scorer_full):
    with one_torch_thread():
        yield tiny_flux_dir, tiny_scorer_full


def _cli(out, models, *extra) -> list[str]:
    flux, scorer = models
    return ["--preset", "tiny", "--out", str(out), "--model.path", str(flux), "--reward.path", str(scorer),
            "--prompts.num_eval", "0", "--prompts.per_step", "1", "--output.checkpoint_every", "1", *extra]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _no_temporaries(out) -> None:
    assert [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")] == []


def test_a_truncated_optimizer_file_is_named_before_the_models_load(tmp_path, models, capsys, monkeypatch):
    out = tmp_path / "run"
    assert cli.main(_cli(out, models, "--steps", "2")) == 0
    first, second = list_checkpoints(out)
    damaged = second / "optimizer.safetensors"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    capsys.readouterr()
    with monkeypatch.context() as m:
        m.setattr("training.grpo.trainer.build_policy", lambda *a, **k: pytest.fail("loaded the model first"))
        assert cli.main(_cli(out, models, "--steps", "3", "--resume")) == 2
    assert _one_error(capsys) == (
        f"error: {damaged} is damaged (Error while deserializing header: incomplete metadata, file not fully "
        f"covered): delete the folder {second} (or move it aside) and rerun with --resume, which then continues "
        f"from {first.name}")
    # doing what it says works
    import shutil

    shutil.rmtree(second)
    assert cli.main(_cli(out, models, "--steps", "3", "--resume")) == 0
    assert [p.name for p in list_checkpoints(out)] == ["step_000002", "step_000003"]


def _full_disk_on_step_2(kind):
    """A write of checkpoint step 2 that fails as a full disk does: safetensors' own error (not an OSError, what a
    real full disk gives) or an OSError from the state.json write."""
    if kind == "safetensors":
        real = checkpointing.save_file

        def save_file(tensors, filename, *args, **kwargs):
            if ".step_000002." in str(filename) and str(filename).endswith("optimizer.safetensors"):
                raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
            return real(tensors, filename, *args, **kwargs)

        return "save_file", save_file
    real_state = checkpointing.write_state

    def write_state(folder, state):
        if ".step_000002." in folder.name:
            raise OSError(errno.ENOSPC, "No space left on device", str(folder / "state.json"))
        return real_state(folder, state)

    return "write_state", write_state


@pytest.mark.parametrize("kind", ["safetensors", "state.json"])
def test_a_full_disk_while_a_checkpoint_is_written(tmp_path, models, capsys, monkeypatch, kind):
    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(checkpointing, *_full_disk_on_step_2(kind))
        assert cli.main(_cli(out, models, "--steps", "2")) == 2
    assert _one_error(capsys) == (
        f"error: no space left on the device writing {out / 'checkpoints' / 'step_000002'}: free some space and "
        "rerun with --resume (checkpoints are written whole, so the ones already there are intact)")
    _no_temporaries(out)
    (first,) = list_checkpoints(out)
    assert first.name == "step_000001"
    check_compatible(first, __import__("json").loads((out / "config.json").read_text()))  # whole and readable
    assert cli.main(_cli(out, models, "--steps", "2", "--resume")) == 0  # once there is space again
    assert [p.name for p in list_checkpoints(out)] == ["step_000001", "step_000002"]
