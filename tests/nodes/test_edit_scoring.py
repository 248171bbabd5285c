"""Edit scoring for the nodes without ComfyUI: edit scorer choices, the handle, batch scoring and its errors, the
region preview and edit reranking."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from nodes.logic.discovery import ScorerChoiceError
from nodes.logic.edit_scoring import (
    draw_regions,
    list_edit_scorers,
    load_edit_handle,
    resolve_edit_scorer,
    score_edit_batch,
)
from nodes.logic.rerank import rerank

from ..threads import one_torch_thread


def _image(pil) -> torch.Tensor:
    return torch.from_numpy(np.asarray(pil.convert("RGB")).astype(np.float32) / 255.0)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """models/spatialscore with a small random edit scorer (shapes-edit instructions), a judge-kind chat model
    folder and a folder of the wrong kind; and an empty built-in folder."""
    from training.reward.config import HeadConfig
    from training.reward.edit.folder import create_coords_edit_model, save_edit_model
    from training.reward.models.coords_model import CoordsConfig, build_vocab

    root = tmp_path_factory.mktemp("models") / "spatialscore"
    texts = ["move the red circle to the left of the blue square", "remove the green triangle"]
    with one_torch_thread():
        model = create_coords_edit_model(CoordsConfig(hidden=16, layers=1, heads=2, vocab=build_vocab(texts)),
                                         HeadConfig(hidden_size=8))
    model.config.instructions = "shapes-edit"
    save_edit_model(model, root / "org" / "edit-small")
    (root / "judge-model").mkdir()
    (root / "judge-model" / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    (root / "llama").mkdir()
    (root / "llama" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return [root], tmp_path_factory.mktemp("no-builtin")


@pytest.fixture(scope="module")
def example():
    from training.dataset.edit.edits import sample_example
    from training.dataset.edit.scene import render

    ex = sample_example(random.Random(3), "wrong_direction", "move")
    return ex.instruction.text, _image(render(ex.source)), torch.stack([_image(render(ex.chosen)),
                                                                       _image(render(ex.rejected)),
                                                                       _image(render(ex.source))])


def test_choices_and_refusals(roots):
    paths, builtin = roots
    names = [(f.name, f.kind) for f in list_edit_scorers(paths, builtin)]
    assert names == [("judge-model", "judge"), ("org/edit-small", "edit")]
    assert resolve_edit_scorer("org/edit-small", paths, builtin).kind == "edit"
    for choice, message in [("../x", "is not a folder name"), ("llama", "holds a model of type 'llama'"),
                            ("nothing", "was not found"), ("", "none chosen")]:
        with pytest.raises(ScorerChoiceError, match=message):
            resolve_edit_scorer(choice, paths, builtin)


def test_scores_a_batch_with_one_source_and_offloads(roots, example):
    paths, builtin = roots
    instruction, source, edited = example
    log = []

    class Recording:
        def load(self, scorer):
            log.append("load")

        def offload(self, scorer):
            log.append("offload")

    with one_torch_thread():
        handle = load_edit_handle("org/edit-small", paths, batch_size=2, builtin_dir=builtin,
                                  placement_factory=lambda s: Recording())
        progress = []
        table = score_edit_batch(handle, source[None], edited, instruction,
                                 progress=lambda d, t: progress.append((d, t)))
        per_image = score_edit_batch(handle, source[None].expand(3, -1, -1, -1), edited, instruction)
    assert table.mean.shape == (3,) and torch.isfinite(table.mean).all() and (table.std > 0).all()
    assert torch.allclose(table.mean, per_image.mean, atol=1e-5)  # one source for all == one per image
    assert progress == [(2, 3), (3, 3)] and log == ["load", "offload", "load", "offload"]
    assert len(table.regions) == 3 and table.reasoning == ["", "", ""] and table.instructions == [instruction] * 3
    best = rerank(table, edited, 2)
    assert best.ranking.indices.tolist() == torch.argsort(-table.mean, stable=True)[:2].tolist()
    assert torch.equal(best.images[0], edited[best.ranking.indices[0]])


@pytest.mark.parametrize(("source_n", "instruction", "message"), [
    (2, None, "source: a batch of 2 images matches neither 1 nor the edited batch \\(3 images\\)"),
    (1, "   ", "instruction: empty"),
    (1, "make it prettier", "cannot read instruction 'make it prettier'"),
    (1, "remove the red circle\nremove the blue square", "2 instruction lines for a batch of 3 images"),
])
def test_bad_input_is_one_clear_error(roots, example, source_n, instruction, message):
    paths, builtin = roots
    text, source, edited = example
    with one_torch_thread():
        handle = load_edit_handle("org/edit-small", paths, builtin_dir=builtin)
        with pytest.raises(ValueError, match=message):
            score_edit_batch(handle, source[None].expand(source_n, -1, -1, -1), edited,
                             text if instruction is None else instruction)


def test_region_preview_outlines_the_boxes():
    images = torch.ones(2, 64, 64, 3)
    out = draw_regions(images, [[[0.5, 0.5, 0.75, 0.75]], []], ["1.0", "2.0"])
    assert out.shape == images.shape and torch.equal(images, torch.ones(2, 64, 64, 3))  # input untouched
    assert out[0, 40, 32].tolist() == pytest.approx([1.0, 0.0, 200 / 255])  # the box's left edge
    assert torch.equal(out[1, 40:, 20:], images[1, 40:, 20:])  # no region: nothing drawn there
