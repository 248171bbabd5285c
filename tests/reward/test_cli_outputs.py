"""`training.reward score --output` and `evaluate --json/--markdown/--device`: a path that is not a regular file, or
a device this machine lacks, is one line and exit 2 before anything is scored, and nothing at the path is replaced."""

from __future__ import annotations

import os
import stat

import pytest
from PIL import Image

import training.reward.scorer as scorer_module
from training.reward.__main__ import main

from .reward_pairs import make_pairs


@pytest.fixture
def no_scoring(monkeypatch):
    monkeypatch.setattr(scorer_module, "load_scorer", lambda *a, **k: pytest.fail("a scorer loaded before the check"))


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "img.png"
    Image.new("RGB", (64, 64), "white").save(path)
    return str(path)


@pytest.fixture
def pairs(tmp_path):
    return str(make_pairs(tmp_path / "pairs", n=4, splits=("test", "test")))


def _one_error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_score_output_fifo_is_refused_and_stays_a_fifo(tmp_path, image, capsys, no_scoring):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    line = _one_error_line(capsys, ["score", "--model", "shapes", "--prompt", "a red circle", "--output", str(fifo),
                                    image])
    assert f"--output {fifo} is a FIFO (named pipe), not a regular file" in line
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_score_output_symlink_is_refused_and_kept(tmp_path, image, capsys, no_scoring):
    target = tmp_path / "elsewhere.json"
    target.write_text("keep me\n")
    link = tmp_path / "scores.json"
    link.symlink_to(target)
    line = _one_error_line(capsys, ["score", "--model", "shapes", "--prompt", "a red circle", "--output", str(link),
                                    image])
    assert f"--output {link} is a symbolic link (to {target})" in line
    assert link.is_symlink() and target.read_text() == "keep me\n"


def test_evaluate_json_folder_is_refused_before_evaluating(tmp_path, pairs, capsys, no_scoring):
    folder = tmp_path / "results"
    folder.mkdir()
    line = _one_error_line(capsys, ["evaluate", "--model", "shapes", "--data", pairs, "--json", str(folder)])
    assert f"--json {folder} is a folder; give a file name, e.g. {folder / 'eval.json'}" in line
    assert list(folder.iterdir()) == []


def test_evaluate_markdown_fifo_and_json_symlink_are_refused(tmp_path, pairs, capsys, no_scoring):
    fifo = tmp_path / "table.md"
    os.mkfifo(fifo)
    line = _one_error_line(capsys, ["evaluate", "--model", "shapes", "--data", pairs, "--markdown", str(fifo)])
    assert f"--markdown {fifo} is a FIFO" in line
    link = tmp_path / "eval.json"
    link.symlink_to(tmp_path / "nowhere.json")
    line = _one_error_line(capsys, ["evaluate", "--model", "shapes", "--data", pairs, "--json", str(link)])
    assert f"--json {link} is a symbolic link" in line
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()


def test_evaluate_device_cuda_without_cuda(pairs, capsys, no_scoring, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = _one_error_line(capsys, ["evaluate", "--model", "shapes", "--data", pairs, "--device", "cuda"])
    assert "--device cuda: this torch has no usable CUDA GPU" in line
