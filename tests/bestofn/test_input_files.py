"""python -m training.bestofn and .measure: a prompt file that is not one, a device this machine lacks, and a --json
path that is not a regular file are one line and exit 2 before any model loads or any figure is computed."""

from __future__ import annotations

import os

import pytest

from training.bestofn.__main__ import main


@pytest.fixture
def no_models(monkeypatch):
    import training.grpo.sampling as sample_module
    import training.reward.scorer as scorer_module

    monkeypatch.setattr(sample_module, "load_policy", lambda *a, **k: pytest.fail("the generator loaded"))
    monkeypatch.setattr(scorer_module, "load_scorer", lambda *a, **k: pytest.fail("the scorer loaded"))


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _argv(tmp_path, prompts, *extra):
    return ["--model", "shapes", "--scorer", "shapes", "--prompts", str(prompts), "--n", "2", "--prune", "none",
            "--out", str(tmp_path / "out"), *extra]


def test_prompts_folder(tmp_path, capsys, no_models):
    line = _error(capsys, _argv(tmp_path, tmp_path))
    assert f"{tmp_path} is a folder; expected a prompt file" in line
    assert not (tmp_path / "out").exists()


def test_a_10_mb_prompt_line_is_refused_before_any_model(tmp_path, capsys, no_models):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle to the left of a blue square\n" + "x" * 10_000_000 + "\n")
    line = _error(capsys, _argv(tmp_path, prompts))
    assert "p.txt:2: a line of more than" in line and "a prompt is at most 4000 characters" in line


def test_non_utf8_prompts(tmp_path, capsys, no_models):
    prompts = tmp_path / "p.txt"
    prompts.write_bytes("un cercle rouge \xe0 gauche\n".encode("latin-1"))
    assert "p.txt:1: byte 0xe0 is not UTF-8" in _error(capsys, _argv(tmp_path, prompts))


def test_device_cuda_without_cuda(tmp_path, capsys, no_models, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle to the left of a blue square\n")
    line = _error(capsys, _argv(tmp_path, prompts, "--device", "cuda"))
    assert "--device cuda: this torch has no usable CUDA GPU" in line


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_measure_json_is_checked_before_the_replay(tmp_path, capsys, monkeypatch, kind):
    from training.bestofn.cli import measure

    monkeypatch.setattr(measure, "load_run", lambda run: pytest.fail("the run was read before --json was checked"))
    target = tmp_path / "figures.json"
    target.mkdir() if kind == "folder" else os.mkfifo(target)
    assert measure.main([str(tmp_path / "run"), "--n", "1", "--json", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--json {target} is a" in err[0], err
