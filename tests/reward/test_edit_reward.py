"""Edit scoring in training.reward: edit pairs, regions, the coords edit scorer (train, resume, save, load), the
Qwen2.5-VL two-image variant on a tiny random model, and `train | score | evaluate` on edit pairs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from training.reward.__main__ import main as reward_main
from training.reward.edit.pairs import is_edit_file, read_edit_pairs
from training.reward.edit.regions import boxes_from_map, cell_coverage, region_iou
from training.reward.train.pairs import PairsFileError

from ..threads import one_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def edits(tmp_path_factory):
    from training.dataset.edit.build import build_edit

    out = tmp_path_factory.mktemp("edits") / "data"
    build_edit(out, 48, seed=11, splits=(0.75, 0.25, 0.0), progress=False)
    return out


def _config(edits, out, **extra):
    from training.reward.train.train_config import load_config

    overrides = {"data.train": str(edits), "output.dir": str(out), "train.steps": 4, "train.batch_size": 8,
                 "train.micro_batch_size": 4, "output.eval_every": 2, "output.checkpoint_every": 2,
                 "output.progress": False, "coords.hidden": 16, "coords.layers": 1, "coords.heads": 2,
                 "head.hidden_size": 8, **extra}
    return load_config(preset="shapes_edit_coords", overrides=overrides, check=False)


def test_region_iou_masks_and_boxes():
    assert region_iou([[0, 0, 0.5, 0.5]], [[0, 0, 0.5, 0.5]]) == 1.0
    assert region_iou([[0, 0, 0.5, 1.0]], [[0.25, 0, 0.75, 1.0]]) == pytest.approx(1 / 3)
    assert region_iou([[0, 0, 0.5, 0.5]], [[0, 0, 0.25, 0.5], [0.25, 0, 0.5, 0.5]]) == 1.0  # unions compared
    assert region_iou([], []) == 1.0 and region_iou([], [[0, 0, 0.1, 0.1]]) == 0.0
    cover = cell_coverage([[[0, 0, 0.5, 0.25]]], grid=4)[0].view(4, 4)
    assert cover[0, :2].tolist() == [1.0, 1.0] and cover[1].sum() == 0 and cover[0, 2] == 0
    prob = np.zeros((8, 8))
    prob[1:3, 1:4] = 0.9
    prob[6, 6] = 0.9  # a one-cell speck is dropped
    assert boxes_from_map(prob) == [[1 / 8, 1 / 8, 4 / 8, 3 / 8]]


def test_edit_pairs_file_and_its_errors(edits, tmp_path):
    assert is_edit_file(edits)
    pairs = read_edit_pairs(edits)
    assert len(pairs) == 48 and pairs[0].source.is_file() and pairs[0].chosen_region is not None
    assert {p.split for p in pairs} <= {"train", "val"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "remove the red circle", "source": "a.png", "chosen": "b.png"}) + "\n"
                   + json.dumps({"prompt": "x", "source": "a.png", "chosen": "b.png", "rejected": "b.png",
                                 "edit_region": [[0, 1]]}) + "\n")
    with pytest.raises(PairsFileError) as err:
        read_edit_pairs(bad)
    text = str(err.value)
    assert "line 1: missing 'rejected'" in text and "line 1: 'source' image not found" in text
    assert "line 2: 'chosen' and 'rejected' are the same image" in text and "line 2: 'edit_region' must be" in text
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"prompt": "a", "chosen": "b", "rejected": "c"}) + "\n")
    assert not is_edit_file(plain)


@pytest.mark.slow
def test_coords_edit_training_resumes_exactly_after_a_kill(edits, tmp_path):
    from safetensors.torch import load_file

    from training.reward.edit.trainer import train_edit

    straight = train_edit(_config(edits, tmp_path / "straight"), log=lambda m: None)
    assert straight["train_pairs"] == len(read_edit_pairs(edits, split="train"))
    assert straight["best"]["val_region_iou"]["edits"] == straight["val_pairs"]
    # "killed" after step 2: its checkpoint is what is left; the resumed run must end on the same weights
    interrupted = _config(edits, tmp_path / "resumed", **{"train.steps": 4})
    interrupted.train.steps = 2
    train_edit(interrupted, log=lambda m: None)
    with pytest.raises(Exception, match="already holds checkpoints"):
        train_edit(_config(edits, tmp_path / "resumed"), log=lambda m: None)
    interrupted.train.steps = 4
    train_edit(interrupted, resume=True, log=lambda m: None)
    a = load_file(str(tmp_path / "straight/checkpoints/step_000004/trainable.safetensors"))
    b = load_file(str(tmp_path / "resumed/checkpoints/step_000004/trainable.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    cfg = json.loads((tmp_path / "straight/scorer/spatialreward.json").read_text())
    assert cfg["kind"] == "coords" and cfg["instructions"] == "shapes-edit"
    assert (tmp_path / "straight/curves.png").is_file()


def test_refuses_a_foreign_output_folder_and_missing_regions(edits, tmp_path):
    from training.common.run_folder import RunFolderError
    from training.reward.edit.trainer import train_edit
    from training.reward.train.train_config import ConfigError

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("x")
    with pytest.raises(RunFolderError, match="not empty"):
        train_edit(_config(edits, foreign), log=lambda m: None)
    rows = [json.loads(x) for x in (edits / "manifest.jsonl").read_text().splitlines()]
    no_regions = tmp_path / "pairs.jsonl"
    no_regions.write_text("".join(json.dumps({k: (str(edits / v) if k in ("source", "chosen", "rejected") else v)
                                              for k, v in r.items() if k not in ("edit_region", "rejected_region")})
                                  + "\n" for r in rows))
    with pytest.raises(ConfigError, match="needs 'edit_region' and 'rejected_region'"):
        train_edit(_config(no_regions, tmp_path / "r"), log=lambda m: None)


@pytest.mark.slow
def test_cli_train_score_evaluate_on_edit_pairs(edits, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--preset", "shapes_edit_coords", "--data", str(edits), "--out", str(run), "--steps", "2",
            "--set", "train.batch_size=8", "--set", "train.micro_batch_size=8", "--set", "coords.hidden=16",
            "--set", "coords.layers=1", "--set", "coords.heads=2", "--set", "head.hidden_size=8",
            "--set", "output.progress=false"]
    assert reward_main(args) == 0
    assert "edit scorer:" in capsys.readouterr().out
    scorer = run / "scorer"
    assert reward_main(["evaluate", "--model", str(scorer), "--data", str(edits), "--split", "val",
                        "--json", str(tmp_path / "eval.json")]) == 0
    out = capsys.readouterr().out
    assert "by edit kind:" in out and "by mistake:" in out and "edit-region IoU on" in out
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["pairs"] == len(read_edit_pairs(edits, split="val"))
    assert set(report["by_mistake"]) <= {"wrong_direction", "wrong_object", "over_edit", "no_change", "partial"}
    row = json.loads((edits / "manifest.jsonl").read_text().splitlines()[0])
    src, good, bad = (str(edits / row[k]) for k in ("source", "chosen", "rejected"))
    assert reward_main(["score", "--model", str(scorer), "--source", src, "--prompt", row["instruction"], good, bad,
                        "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and all(np.isfinite(r["mean"]) and r["std"] > 0 for r in rows)
    assert all(isinstance(r["regions"], list) for r in rows)
    # bad input: one line naming the problem, exit 2
    assert reward_main(["score", "--model", str(scorer), "--source", src, "--source", src, "--source", src,
                        "--prompt", row["instruction"], good, bad]) == 2
    assert "a batch of 3 matches neither 1 nor the 2 edited images" in capsys.readouterr().err
    assert reward_main(["score", "--model", str(scorer), "--source", src, "--prompt", "make it nicer", good]) == 2
    assert "cannot read instruction 'make it nicer'" in capsys.readouterr().err
    assert reward_main(["score", "--model", str(scorer), "--source", src, "--prompt", " ", good]) == 2
    assert "empty" in capsys.readouterr().err


@pytest.mark.slow
def test_qwen25vl_edit_model_trains_saves_and_reloads(edits, tmp_path):
    from PIL import Image

    from training.reward.cli.edit import validate_edit
    from training.reward.edit.scorer import load_edit_scorer
    from training.reward.edit.trainer import train_edit
    from training.reward.train.train_config import load_config

    config = load_config(preset="tiny_lora", check=False, overrides={
        "data.train": str(edits), "output.dir": str(tmp_path / "q"), "train.steps": 2, "train.batch_size": 2,
        "train.micro_batch_size": 2, "train.grounding_weight": 0.5, "data.val_pairs": 2, "output.eval_every": 2,
        "output.progress": False})
    validate_edit(config)  # region grounding is allowed on the Qwen edit model
    summary = train_edit(config, log=lambda m: None)
    folder = tmp_path / "q" / "scorer"
    cfg = json.loads((folder / "spatialreward.json").read_text())
    assert cfg["kind"] == "qwen2_5_vl" and cfg["weights"] == "lora" and (folder / "adapter").is_dir()
    assert summary["best"]["step"] == 2
    scorer = load_edit_scorer(folder, device="cpu")
    chat = scorer.model.chat
    assert chat.count("<|image_pad|>") == 2 and chat.endswith("<|reward|>")  # both images, reward token last
    pair = read_edit_pairs(edits)[0]
    imgs = [Image.open(p).convert("RGB") for p in (pair.source, pair.chosen, pair.rejected)]
    first = scorer.score(imgs[0], imgs[1:], pair.instruction)
    again = load_edit_scorer(folder, device="cpu").score(imgs[0], imgs[1:], pair.instruction)
    assert torch.allclose(first.mean, again.mean, atol=1e-5) and len(first.regions[0]) == 1
    x0, y0, x1, y1 = first.regions[0][0]
    assert 0 <= x0 <= x1 <= 1 and 0 <= y0 <= y1 <= 1


def test_non_finite_weights_are_never_saved(tmp_path):
    from training.common.finite import NonFiniteError
    from training.reward.config import HeadConfig
    from training.reward.edit.folder import create_coords_edit_model, save_edit_model
    from training.reward.models.coords_model import CoordsConfig

    model = create_coords_edit_model(CoordsConfig(hidden=8, layers=1, heads=2, vocab=["red"]), HeadConfig(8))
    with torch.no_grad():
        model.head.out.weight[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="edit scorer weights"):
        save_edit_model(model, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("loss", ["mc_gaussian_bt", "bt"])
def test_every_pair_loss_trains_edit_pairs(edits, tmp_path, loss):
    from training.reward.edit.trainer import train_edit

    summary = train_edit(_config(edits, tmp_path / loss, **{"train.loss": loss, "train.steps": 1,
                                                             "data.val_pairs": 4}), log=lambda m: None)
    assert np.isfinite(summary["best"]["val_loss"])
