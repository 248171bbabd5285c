"""The coords backbone behind the scorer interface: folder round trip, batching, errors, training, resume."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from training.reward import load_scorer
from training.reward.config import HeadConfig, ScorerFolderError
from training.reward.models.coords_model import (
    BACKBONE_FILE,
    CoordsConfig,
    build_vocab,
    coordinate_features,
    prompt_words,
)
from training.reward.models.loading import create_coords_model, load_model, save_model
from training.reward.train.train_config import ConfigError
from training.reward.train.trainer import train

from .reward_pairs import make_pairs, single_thread  # noqa: F401 (autouse fixture)
from .test_train import tiny_config

PROMPTS = ["a red square to the left of a blue square", "a blue circle above a red triangle, and a green x"]


def _model(seed=0, **arch):
    coords = CoordsConfig(hidden=16, layers=2, heads=2, grid=8, vocab=build_vocab(PROMPTS), **arch)
    return create_coords_model(coords, HeadConfig(hidden_size=16), seed=seed).eval()


def _images(n, seed=0, sizes=((64, 64), (80, 48), (33, 90))):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (*sizes[i % len(sizes)][::-1], 3), dtype=np.uint8))
            for i in range(n)]


def test_words_vocabulary_and_coordinates():
    assert prompt_words("A red square, LEFT of a blue-square.") == \
        ["a", "red", "square", ",", "left", "of", "a", "blue", "-", "square", "."]
    assert build_vocab(["b a", "a c"]) == ["a", "b", "c"]
    xy = coordinate_features(4, 2)
    assert xy.shape == (16, 2 + 8)
    assert torch.allclose(xy[0, :2], torch.tensor([0.125, 0.125])) and torch.allclose(xy[7, :2],
                                                                                      torch.tensor([0.875, 0.375]))
    with pytest.raises(ValueError, match="multiple of grid"):
        CoordsConfig(pixels=64, grid=10)


def test_save_load_identical_scores_and_batch_invariance(tmp_path):
    model = _model(seed=3)
    images, prompts = _images(6), [PROMPTS[i % 2] for i in range(6)]
    with torch.no_grad():
        ref_mean, ref_log_std = model(model.encode(images, prompts))
    save_model(model, tmp_path / "scorer")
    assert sorted(p.name for p in (tmp_path / "scorer").iterdir()) == \
        [BACKBONE_FILE, "head.safetensors", "spatialscore.json"]
    scorer = load_scorer(tmp_path / "scorer", device="cpu", batch_size=4)
    result = scorer.score(images, prompts)
    assert torch.allclose(result.mean, ref_mean, atol=1e-6)
    assert torch.allclose(result.std, ref_log_std.exp(), atol=1e-6)
    one_by_one = torch.cat([load_scorer(tmp_path / "scorer", batch_size=1).score([im], p).mean
                            for im, p in zip(images, prompts, strict=True)])
    assert torch.allclose(one_by_one, result.mean, atol=1e-5)
    # The score reads the image: a different image gets a different score.
    assert not torch.allclose(result.mean[:1], scorer.score(_images(1, seed=9), prompts[0]).mean)


def test_unknown_words_are_read_as_unk_and_long_prompts_refused():
    model = _model(max_words=8)
    ids, mask = model.encode_prompts(["a zebra square"])
    assert ids.tolist() == [[2, model.word_ids["a"], 1, model.word_ids["square"]]] and mask.all()
    with pytest.raises(ValueError, match=r"prompts\[0\]: 9 words.*\(8\)"):
        model.encode_prompts(["a b c d e f g h i"])
    with pytest.raises(ValueError, match="2 images and 1 prompts"):
        model.encode(_images(2), ["a red square"])


def test_broken_folders_name_the_problem(tmp_path):
    save_model(_model(), tmp_path / "s")
    (tmp_path / "s" / BACKBONE_FILE).rename(tmp_path / "moved")
    with pytest.raises(ScorerFolderError, match=f"missing {BACKBONE_FILE}"):
        load_model(tmp_path / "s", device="cpu")
    save_model(_model(), tmp_path / "t")
    cfg_path = tmp_path / "t" / "spatialscore.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["coords"]["hidden"] = 32  # the weights are 16 wide
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ScorerFolderError, match="does not match the config's architecture"):
        load_model(tmp_path / "t", device="cpu")
    cfg["coords"]["grid"] = 7
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ScorerFolderError, match="malformed 'coords' section"):
        load_model(tmp_path / "t", device="cpu")
    cfg["weights"] = "lora"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ScorerFolderError, match="needs weights='full'"):
        load_model(tmp_path / "t", device="cpu")


COORDS = {"model.backbone": "coords", "model.weights": "full", "model.base": "", "coords.hidden": 16,
          "coords.layers": 2, "coords.heads": 2, "coords.grid": 8, "head.hidden_size": 16}


def test_trainer_learns_a_visible_difference_and_exports_a_coords_scorer(tmp_path):
    data = make_pairs(tmp_path / "pairs", n=32, trivial=True)
    out = tmp_path / "run"
    config = tiny_config(out, data, **COORDS, **{"train.steps": 30, "train.batch_size": 8,
                                                 "train.micro_batch_size": 8, "train.learning_rate": 3e-3,
                                                 "output.eval_every": 10, "data.val_pairs": 8})
    result = train(config)
    scorer = load_scorer(result.scorer_path, device="cpu")
    assert scorer.model.config.backbone == "coords"
    assert scorer.model.coords_config.vocab == build_vocab(["a red square to the left of a blue square"])
    val = [r for r in result.records if r["kind"] == "val"]
    assert val[-1]["val_accuracy"] == 1.0  # a blue square turned green: learnable in 30 steps


def test_coords_resume_equals_uninterrupted(tmp_path):
    data = make_pairs(tmp_path / "pairs", n=16)
    # Constant LR: a run told to stop at step 2 then has the same schedule as one going to step 4.
    common = {**COORDS, "train.steps": 4, "output.checkpoint_every": 2, "output.eval_every": 0,
              "train.schedule": "constant", "train.warmup_steps": 0}
    full = train(tiny_config(tmp_path / "full", data, **common))
    train(tiny_config(tmp_path / "half", data, **{**common, "train.steps": 2}))
    # A run stopped after step 2 (its checkpoint) continues to step 4 with --resume.
    resumed = train(tiny_config(tmp_path / "half", data, **common), resume=True)
    a = load_scorer(full.scorer_path).score(_images(3), PROMPTS[0]).mean
    b = load_scorer(resumed.scorer_path).score(_images(3), PROMPTS[0]).mean
    assert torch.allclose(a, b, atol=1e-6)


def test_init_from_a_coords_scorer_trains_every_weight(tmp_path):
    data = make_pairs(tmp_path / "pairs", n=16)
    save_model(_model(), tmp_path / "start")
    result = train(tiny_config(tmp_path / "run", data, **{"model.init_from": str(tmp_path / "start"),
                                                          "train.steps": 2}))
    before = load_model(tmp_path / "start", device="cpu")
    after = load_model(result.scorer_path, device="cpu")
    changed = [n for n, p in after.named_parameters()
               if not torch.equal(p, dict(before.named_parameters())[n])]
    assert any(n.startswith("backbone.stem") for n in changed) and any(n.startswith("head.") for n in changed)


def test_coords_config_problems_are_reported_before_any_model_loads(tmp_path):
    data = make_pairs(tmp_path / "pairs", n=4)
    with pytest.raises(ConfigError, match="set model.weights = 'full'"):
        tiny_config(tmp_path / "o", data, **{**COORDS, "model.weights": "lora"})
    with pytest.raises(ConfigError, match=r"\[coords\]: .*multiple of heads"):
        tiny_config(tmp_path / "o", data, **{**COORDS, "coords.heads": 3})
    with pytest.raises(ConfigError, match="model.backbone must be one of"):
        tiny_config(tmp_path / "o", data, **{**COORDS, "model.backbone": "resnet"})


def _layout_pairs(folder, n=16):
    """make_pairs' pairs with the scene layouts a dataset row carries (red and blue square centres)."""
    path = make_pairs(folder, n=n)
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    for i, r in enumerate(rows):
        r["scene"] = {"objects": [{"color": "red", "category": "square", "box": [0.1, 0.2 + i / 100, 0.3, 0.4]},
                                  {"color": "blue", "category": "square", "box": [0.6, 0.1, 0.8, 0.3]}]}
        r["perturbed_scene"] = {"objects": [{"color": "red", "category": "square", "box": [0.6, 0.2, 0.8, 0.4]},
                                            {"color": "blue", "category": "square", "box": [0.1, 0.1, 0.3, 0.3]}]}
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_grounding_targets_name_the_object_of_each_word():
    model = _model()
    layout = (("blue", 0.7, 0.2), ("red", 0.2, 0.3))  # "square" names two objects: no target
    target, known = model.grounding_targets([PROMPTS[0]], [layout])
    words = prompt_words(PROMPTS[0])
    assert known[0].tolist() == [False] + [w in ("red", "blue") for w in words] + [False] * (known.shape[1] - 1 -
                                                                                              len(words))
    assert target[0, 1 + words.index("red")].tolist() == pytest.approx([0.2, 0.3])
    assert target[0, 1 + words.index("blue")].tolist() == pytest.approx([0.7, 0.2])


def test_grounding_loss_is_learned_and_logged(tmp_path):
    data = _layout_pairs(tmp_path / "pairs")
    from training.reward.train.pairs import read_pairs

    assert read_pairs(data)[0].layouts[0] == (("blue", 0.7, 0.2), ("red", 0.2, 0.30000000000000004))
    config = tiny_config(tmp_path / "run", data, **COORDS, **{"train.steps": 25, "train.batch_size": 8,
                                                            "train.micro_batch_size": 4, "train.learning_rate": 3e-3,
                                                            "train.grounding_weight": 1.0, "output.eval_every": 0})
    result = train(config)
    ground = [r["grounding"] for r in result.records if r["kind"] == "train"]
    assert len(ground) == 25 and sum(ground[-5:]) < 0.5 * sum(ground[:5])


def test_grounding_needs_layouts_and_the_coords_backbone(tmp_path):
    plain = make_pairs(tmp_path / "plain", n=8)
    with pytest.raises(ConfigError, match="needs scene layouts .* 6 of 6 have none"):
        train(tiny_config(tmp_path / "a", plain, **COORDS, **{"train.grounding_weight": 1.0}))
    with pytest.raises(ConfigError, match="needs model.backbone = 'coords'"):
        tiny_config(tmp_path / "b", plain, **{"train.grounding_weight": 1.0})
    with pytest.raises(ConfigError, match=r"grounding_layer must be in 1\.\.coords\.layers \(2\)"):
        tiny_config(tmp_path / "c", plain, **COORDS, **{"train.grounding_weight": 1.0, "train.grounding_layer": 3})


def test_recipes_ship_atomically_and_the_research_recipe_never_over_shapes(tmp_path):
    from research.shapes_scorer import shapes_qwen
    from training.reward.recipes import shapes

    save_model(_model(), tmp_path / "scorer")
    assets = tmp_path / "assets"
    shipped = shapes.ship(tmp_path / "scorer", {"heldout": 0.97}, assets)
    assert shipped == assets / "shapes" and load_scorer(shipped).model.config.notes["heldout"] == 0.97
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    shapes_qwen.ship(tmp_path / "base", tmp_path / "scorer", assets)
    assert sorted(p.name for p in assets.iterdir()) == ["shapes", "shapes-qwen", "shapes-qwen-base"]
    assert json.loads((assets / "shapes-qwen" / "spatialscore.json").read_text())["base_model"] == \
        "../shapes-qwen-base"
    assert load_scorer(assets / "shapes").model.config.notes["heldout"] == 0.97  # untouched


def test_export_last_keeps_the_final_weights_not_the_best_validated(tmp_path):
    """output.export = "last": the scorer folder holds the final step's weights (fine-tuning towards pictures the
    validation set does not hold); the default keeps the best-validated step."""
    from safetensors.torch import load_file

    data = _layout_pairs(tmp_path / "pairs")
    settings = {"train.steps": 6, "train.batch_size": 8, "train.micro_batch_size": 8, "train.learning_rate": 3e-3,
                "output.eval_every": 2, "output.checkpoint_every": 6}
    last = train(tiny_config(tmp_path / "last", data, **COORDS, **settings, **{"output.export": "last"}))
    notes = load_scorer(tmp_path / "last" / "scorer").model.config.notes
    assert notes["step"] == 6 and notes["export"] == "last"
    exported = load_file(tmp_path / "last" / "scorer" / "head.safetensors")
    final = load_file(tmp_path / "last" / "checkpoints" / "step_000006" / "trainable.safetensors")
    head = {k.split("head.", 1)[1]: v for k, v in final.items() if k.startswith("head.")}
    assert head and all(torch.equal(exported[k], v) for k, v in head.items())
    assert [r["step"] for r in last.records if r["kind"] == "val"] == [2, 4, 6]
    with pytest.raises(ConfigError, match="output.export must be best or last"):
        tiny_config(tmp_path / "bad", data, **COORDS, **{"output.export": "newest"})
