"""The shipped shapes scorer (`--model shapes`) and the pieces of its recipe (training.reward.recipes)."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.dataset.oracle import judge
from training.reward import load_scorer
from training.reward.loading import ASSETS, shipped_scorers
from training.reward.recipes.shapes_data import QUERY, StreamTable, build_streams, load_rows
from training.reward.recipes.shapes_eval import accuracy_by_objects

# Measured on 1,000 held-out pairs (research/shapes_scorer/NOTES.md); a fresh 120-pair set varies by a few points.
MIN_FRESH_ACCURACY = float(json.loads((ASSETS / "shapes" / "spatialscore.json").read_text())["notes"]
                           .get("test_min_accuracy", 0.9)) if (ASSETS / "shapes").is_dir() else 0.9


@pytest.fixture(scope="module")
def fresh_shapes(tmp_path_factory):
    """A small shapes dataset built now, from a seed no training run used."""
    out = tmp_path_factory.mktemp("shapes") / "data"
    subprocess.run([sys.executable, "-m", "training.dataset", "build", "--world", "shapes", "--pairs", "120",
                    "--seed", "90210", "--out", str(out), "--no-progress"], check=True, capture_output=True)
    return out


def test_shapes_is_a_shipped_lora_scorer_with_its_base():
    assert "shapes" in shipped_scorers()
    cfg = json.loads((ASSETS / "shapes" / "spatialscore.json").read_text())
    assert cfg["weights"] == "lora" and cfg["base_model"] == "../shapes-base"
    assert (ASSETS / "shapes-base" / "config.json").is_file()
    assert "shapes-base" not in shipped_scorers()  # a base, not a scorer
    size = sum(p.stat().st_size for d in ("shapes", "shapes-base") for p in (ASSETS / d).rglob("*") if p.is_file())
    assert size < 8 * 2**20


def test_shipped_shapes_scorer_judges_fresh_held_out_pairs(fresh_shapes):
    result = accuracy_by_objects("shapes", fresh_shapes)
    assert result["all"]["pairs"] == 120
    assert result["all"]["accuracy"] >= MIN_FRESH_ACCURACY, result
    assert result["objects=3"]["accuracy"] >= MIN_FRESH_ACCURACY - 0.1, result


def test_shipped_scorer_prefers_the_true_prompt_of_an_image(fresh_shapes):
    """The other direction of the same judgement: one image, its prompt against its perturbed prompt."""
    rows = [json.loads(x) for x in (fresh_shapes / "manifest.jsonl").read_text().splitlines()][:40]
    from PIL import Image

    scorer = load_scorer("shapes", device="cpu")
    images = [Image.open(fresh_shapes / r["chosen"]) for r in rows for _ in (0, 1)]
    prompts = [p for r in rows for p in (r["prompt"], r["perturbed_prompt"])]
    mean = scorer.score(images, prompts).mean.view(-1, 2)
    assert (mean[:, 0] > mean[:, 1]).float().mean() >= 0.75


def test_streams_are_labelled_by_the_oracle(fresh_shapes):
    from training.reward.tiny import build_tiny_qwen25vl

    _, processor = build_tiny_qwen25vl(0, min_pixels=112 * 112, max_pixels=112 * 112)
    table = StreamTable(processor, pixels=112)
    rows = load_rows(fresh_shapes, ("train", "val", "test"))[:10]
    streams, pairs = build_streams(table, rows, fresh_shapes, random.Random(0))
    assert len(streams) == 20 and len(pairs) == 10
    paths = []  # the table's image order: first appearance (pairs of one scene share their perfect image)
    for row in rows:
        for key in ("chosen", "rejected"):
            if fresh_shapes / row[key] not in paths:
                paths.append(fresh_shapes / row[key])
    images = dict(enumerate(paths))
    assert len(table.pixels) == len(paths)
    labels = [lab for s in streams for lab in s.labels]
    assert 0.3 < sum(labels) / len(labels) < 0.7  # balanced enough to learn from
    for s in streams[:6]:
        for text, label in zip(s.texts, s.labels):
            assert judge(images[s.image], text).all == bool(label), text
    batch = table.batch(streams[:4])
    query = table.tok.convert_tokens_to_ids(table.tok.tokenize(QUERY))[0]
    at = batch["targets"] != -100
    assert (batch["input_ids"][at] == query).all()
    assert at.sum() == sum(len(s.texts) for s in streams[:4])
    ids, targets = batch["input_ids"], batch["targets"]
    for i in range(4):  # teacher forcing: a verdict comes right after its query, never before it
        queries = (targets[i] != -100).nonzero().flatten().tolist()
        for q, nxt in zip(queries, queries[1:]):
            assert ids[i, q + 1] == targets[i, q]
            assert not {table.yes_id, table.no_id} & set(ids[i, q + 2: nxt].tolist())


def test_initial_scorer_reads_the_base_yes_no_answer(tmp_path):
    """make_initial_scorer: the scorer's mean is the base's logit(Yes) - logit(No) at the query token."""
    from training.reward.recipes.shapes_init import make_initial_scorer
    from training.reward.tiny import save_tiny_qwen25vl
    from transformers import Qwen2_5_VLForConditionalGeneration
    from PIL import Image

    px = 56 * 56
    base = save_tiny_qwen25vl(tmp_path / "base", seed=3, rope_theta=5.0, min_pixels=px, max_pixels=px)
    scorer_dir = make_initial_scorer(base, tmp_path / "scorer", rank=4, pixels=56)
    scorer = load_scorer(scorer_dir, device="cpu")
    vlm = Qwen2_5_VLForConditionalGeneration.from_pretrained(base, local_files_only=True).eval()
    table = StreamTable(scorer.model.processor, pixels=56)
    img = Image.new("RGB", (64, 64), (240, 240, 240))
    img.paste((220, 30, 30), (5, 5, 20, 20))
    img.save(tmp_path / "a.png")
    table.add_image(tmp_path / "a.png")
    from training.reward.recipes.shapes_data import Stream

    prompt = "a red circle to the left of a blue square"
    b = table.batch([Stream(0, [prompt], [1], 2)])
    with torch.no_grad():
        h = vlm.model(**{k: b[k] for k in ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values",
                                           "image_grid_thw")}).last_hidden_state[0, -1]
        logits = vlm.lm_head(h)
    tok = table.tok
    expected = logits[tok.encode("Yes")[0]] - logits[tok.encode("No")[0]]
    got = scorer.score([img], prompt).mean[0]
    assert torch.isclose(got, expected, atol=1e-4), (got, expected)
