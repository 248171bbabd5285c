"""Scorer folders and score-CLI arguments that used to end in a traceback: one line naming the problem, exit 2,
and nothing scored in vain (issue 12, item 8, 9 and the image-path findings)."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from training.reward import ScorerFolderError, load_model
from training.reward.__main__ import main
from training.reward.config import FORMAT_NAME
from training.reward.models.loading import ASSETS, check_scorer_folder

SHAPES = ASSETS / "shapes"


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "img.png"
    Image.new("RGB", (64, 64), "white").save(path)
    return str(path)


def _copy(tmp_path, name="s"):
    return shutil.copytree(SHAPES, tmp_path / name)


def _score(capsys, *args) -> tuple[int, str]:
    rc = main(["score", "--prompt", "a red circle", *map(str, args)])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_corrupt_safetensors_is_named(tmp_path, image, capsys, damage):
    folder = _copy(tmp_path)
    f = folder / "head.safetensors"
    f.write_bytes(f.read_bytes()[:100] if damage == "truncated" else b"")
    rc, err = _score(capsys, "--model", folder, image)
    assert rc == 2 and f"{f}: not a readable .safetensors file" in err and "Traceback" not in err
    with pytest.raises(ScorerFolderError, match="head.safetensors"):
        check_scorer_folder(folder)  # what GRPO's validation calls: no model loaded


def test_nan_head_weights_are_refused(tmp_path, image, capsys):
    folder = _copy(tmp_path)
    head = load_file(str(folder / "head.safetensors"))
    name = sorted(head)[0]
    head[name] = torch.full_like(head[name], float("nan"))
    save_file(head, str(folder / "head.safetensors"))
    rc, err = _score(capsys, "--model", folder, image)
    assert rc == 2 and "holds NaN or infinite values" in err and "head.safetensors" in err


@pytest.mark.parametrize("edit, message", [
    (lambda d: [1, 2], "expected a JSON object at the top level, got list"),
    (lambda d: {**d, "base_model": 5}, "base_model must be text, got 5"),
    (lambda d: {**d, "version": "abc"}, "version must be a whole number, got 'abc'"),
])  # fmt: skip
def test_malformed_spatialscore_json_names_the_file(tmp_path, image, capsys, edit, message):
    folder = _copy(tmp_path)
    cfg = folder / "spatialscore.json"
    cfg.write_text(json.dumps(edit(json.loads(cfg.read_text()))))
    rc, err = _score(capsys, "--model", folder, image)
    assert rc == 2 and f"{cfg}: {message}" in err


def test_pickled_lora_adapter_is_refused_by_name(tmp_path):
    folder = tmp_path / "lora_scorer"
    (folder / "adapter").mkdir(parents=True)
    (folder / "processor").mkdir()
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    (folder / "adapter" / "adapter_model.bin").write_bytes(b"\x80\x04not really a pickle")
    save_file({"w": torch.zeros(1)}, str(folder / "head.safetensors"))
    (folder / "spatialscore.json").write_text(json.dumps({"format": FORMAT_NAME, "weights": "lora", "lora": {"rank": 4},
                                                          "base_model": str(tmp_path)}))
    with pytest.raises(ScorerFolderError, match=r"adapter_model\.bin: pickled weights are refused"):
        load_model(folder)
    with pytest.raises(ScorerFolderError, match=r"adapter_model\.bin: pickled weights are refused"):
        check_scorer_folder(folder)


def test_output_is_checked_before_scoring(tmp_path, image, capsys, monkeypatch):
    import training.reward.scorer as scorer_module

    monkeypatch.setattr(scorer_module, "load_scorer", lambda *a, **k: pytest.fail("scored before --output check"))
    (tmp_path / "adir").mkdir()
    rc, err = _score(capsys, "--model", "shapes", "--output", tmp_path / "adir", image)
    assert rc == 2 and "is a folder; give a file name" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, err = _score(capsys, "--model", "shapes", "--output", blocker / "scores.json", image)
    assert rc == 2 and "cannot write there" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda(image, capsys):
    rc, err = _score(capsys, "--model", "shapes", "--device", "cuda", image)
    assert rc == 2 and "--device cuda: this torch has no usable CUDA GPU" in err


def test_folder_and_symlink_loop_are_not_called_missing(tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    rc, err = _score(capsys, "--model", "shapes", tmp_path / "adir")
    assert rc == 2 and "adir: a folder, not an image file" in err
    rc, err = _score(capsys, "--model", "shapes", tmp_path / "a")
    assert rc == 2 and "a symbolic link loop" in err


def test_debug_shows_the_traceback(tmp_path, image):
    folder = _copy(tmp_path)
    (folder / "spatialscore.json").write_text("[1]")
    with pytest.raises(ScorerFolderError):
        main(["--debug", "score", "--model", str(folder), "--prompt", "a", image])
