"""Every bad input gets an error that names it, and nothing is written on failure."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from training.common.images import ImageInputError
from training.reward import ScorerFolderError, load_scorer
from training.reward.__main__ import main


@pytest.fixture(scope="module")
def scorer(tiny_scorer_full):
    return load_scorer(tiny_scorer_full)


def img():
    return Image.new("RGB", (64, 64), (200, 30, 30))


def test_empty_prompt(scorer):
    with pytest.raises(ValueError, match=r"prompts\[1\]: empty prompt"):
        scorer.score([img(), img()], ["a red circle", "  "])


def test_prompt_count_mismatch(scorer):
    with pytest.raises(ValueError, match="got 3 prompts for 2 images"):
        scorer.score([img(), img()], ["a", "b", "c"])


def test_zero_size_image(scorer):
    with pytest.raises(ImageInputError, match=r"image 1: image has zero size"):
        scorer.score([np.zeros((8, 8, 3), np.uint8), np.zeros((0, 8, 3), np.uint8)], "a")


def test_nan_image(scorer):
    batch = torch.rand(2, 16, 16, 3)
    batch[1, 3, 3, 0] = float("nan")
    with pytest.raises(ImageInputError, match="image 1: image contains NaN"):
        scorer.score(batch, "a")


def test_empty_batch(scorer):
    with pytest.raises(ImageInputError, match="empty batch"):
        scorer.score(torch.zeros(0, 8, 8, 3), "a")


def test_wrong_channel_count(scorer):
    with pytest.raises(ImageInputError, match="expected 1, 3 or 4 channels, got 2"):
        scorer.score([np.zeros((8, 8, 2), np.uint8)], "a")


def test_missing_image_file(scorer, tmp_path):
    with pytest.raises(ImageInputError, match="image file not found: .*nope.png"):
        scorer.score([tmp_path / "nope.png"], "a")


def test_corrupt_image_file(scorer, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageInputError, match="cannot read image file .*bad.png"):
        scorer.score([bad], "a")


def test_missing_model_folder(tmp_path):
    with pytest.raises(ScorerFolderError, match="model folder not found: .*absent"):
        load_scorer(tmp_path / "absent")


def test_folder_of_the_wrong_kind(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScorerFolderError, match="has neither spatialscore.json"):
        load_scorer(tmp_path / "empty")
    flux = tmp_path / "flux"
    flux.mkdir()
    (flux / "model_index.json").write_text("{}")
    with pytest.raises(ScorerFolderError, match="is a diffusers pipeline"):
        load_scorer(flux)
    llama = tmp_path / "llama"
    llama.mkdir()
    (llama / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ScorerFolderError, match="holds a 'llama' model"):
        load_scorer(llama)


def test_scorer_missing_parts_are_named(tiny_scorer_full, tmp_path):
    broken = shutil.copytree(tiny_scorer_full, tmp_path / "broken")
    (broken / "head.safetensors").unlink()
    with pytest.raises(ScorerFolderError, match="missing head.safetensors"):
        load_scorer(broken)
    cfg = json.loads((tiny_scorer_full / "spatialscore.json").read_text())
    other = shutil.copytree(tiny_scorer_full, tmp_path / "newer")
    (other / "spatialscore.json").write_text(json.dumps({**cfg, "version": 99}))
    with pytest.raises(ScorerFolderError, match="version 99 is newer"):
        load_scorer(other)


def test_lora_scorer_with_missing_base_names_the_path(tiny_scorer_full, tmp_path):
    lora = shutil.copytree(tiny_scorer_full, tmp_path / "lora")
    cfg = json.loads((lora / "spatialscore.json").read_text())
    cfg.update(weights="lora", base_model=str(tmp_path / "gone-base"), lora={"rank": 4})
    (lora / "spatialscore.json").write_text(json.dumps(cfg))
    with pytest.raises(ScorerFolderError, match=r"base model of scorer .* not found: .*gone-base"):
        load_scorer(lora)


def test_cli_failure_writes_nothing(tiny_scorer_full, tmp_path, capsys):
    good = tmp_path / "good.png"
    img().save(good)
    out = tmp_path / "scores.json"
    rc = main(["score", "--model", str(tiny_scorer_full), "--prompt", "a", "--output", str(out),
               str(good), str(tmp_path / "missing.png")])
    assert rc == 2 and not out.exists()
    assert "image file not found" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [good]
