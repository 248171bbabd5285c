"""python -m training.dataset: `--device cuda` without CUDA (review --scorer, build) and a --preview path that is not
a regular file are one line and exit 2 before any work, and the path is left as it was."""

from __future__ import annotations

import os
import stat

import pytest

from training.dataset.__main__ import main


def _one_error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.fixture
def no_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_review_scorer_on_cuda_without_cuda(tmp_path, capsys, monkeypatch, no_cuda):
    import training.dataset.review.app as app_module
    import training.dataset.review.server as server_module

    monkeypatch.setattr(app_module, "ReviewApp", lambda *a, **k: pytest.fail("the review app was built"))
    monkeypatch.setattr(server_module, "serve", lambda *a, **k: pytest.fail("the server started"))
    line = _one_error_line(capsys, ["review", str(tmp_path), "--scorer", "shapes", "--device", "cuda"])
    assert "--device cuda: this torch has no usable CUDA GPU" in line


def test_build_on_cuda_without_cuda(tmp_path, capsys, no_cuda):
    out = tmp_path / "data"
    line = _one_error_line(capsys, ["build", "--world", "shapes", "--pairs", "2", "--out", str(out), "--device",
                                    "cuda", "--no-progress"])
    assert "--device cuda: this torch has no usable CUDA GPU" in line
    assert not out.exists()


@pytest.mark.parametrize("kind", ["folder", "fifo", "symlink"])
def test_stats_preview_that_is_not_a_regular_file(tmp_path, capsys, monkeypatch, kind):
    import training.dataset.stats as stats_module

    monkeypatch.setattr(stats_module, "dataset_stats", lambda *a, **k: pytest.fail("the stats ran first"))
    preview = tmp_path / "sheet.png"
    if kind == "folder":
        preview.mkdir()
    elif kind == "fifo":
        os.mkfifo(preview)
    else:
        (tmp_path / "mine.png").write_bytes(b"mine")
        preview.symlink_to(tmp_path / "mine.png")
    mode = os.lstat(preview).st_mode
    (tmp_path / "data").mkdir()
    line = _one_error_line(capsys, ["stats", str(tmp_path / "data"), "--preview", str(preview)])
    assert f"--preview {preview} is a" in line
    assert os.lstat(preview).st_mode == mode and stat.S_IFMT(mode) != stat.S_IFREG


def test_edit_check_source_that_is_a_folder(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (64, 64), "white").save(tmp_path / "edited.png")
    line = _one_error_line(capsys, ["check", "--world", "shapes-edit", "--instruction", "remove the red circle",
                                    "--source", str(tmp_path), str(tmp_path / "edited.png")])
    assert f"--source: {tmp_path} is a folder, not an image file" in line
