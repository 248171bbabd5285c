"""Pairs files whose image paths name folders: the line and 'is a folder' in the one error, before any scorer loads."""

from __future__ import annotations

import json

import pytest
from PIL import Image

import training.reward.scorer as scorer_module
from training.reward.__main__ import main


@pytest.fixture
def no_scoring(monkeypatch):
    import training.reward.edit.scorer as edit_scorer_module

    monkeypatch.setattr(scorer_module, "load_scorer", lambda *a, **k: pytest.fail("a scorer loaded"))
    monkeypatch.setattr(edit_scorer_module, "load_edit_scorer", lambda *a, **k: pytest.fail("a scorer loaded"))


def _images(tmp_path):
    for name, colour in (("a.png", "white"), ("b.png", "red")):
        Image.new("RGB", (64, 64), colour).save(tmp_path / name)
    (tmp_path / "folder.png").mkdir()


def test_edit_pairs_whose_source_is_a_folder(tmp_path, capsys, no_scoring):
    _images(tmp_path)
    pairs = tmp_path / "edit.jsonl"
    pairs.write_text(json.dumps({"instruction": "make the red circle green", "source": "folder.png",
                                 "chosen": "a.png", "rejected": "b.png"}) + "\n")
    assert main(["evaluate", "--model", "shapes-edit", "--data", str(pairs)]) == 2
    err = capsys.readouterr().err
    assert f"line 1: 'source' is a folder, not an image file: {tmp_path / 'folder.png'}" in err
    assert "Traceback" not in err


def test_pairs_whose_chosen_image_is_a_folder(tmp_path, capsys, no_scoring):
    _images(tmp_path)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "a red circle", "chosen": "folder.png", "rejected": "b.png"}) + "\n")
    assert main(["evaluate", "--model", "shapes", "--data", str(pairs)]) == 2
    assert "line 1: 'chosen' is a folder, not an image file" in capsys.readouterr().err
