"""The pieces of the tiny Qwen2.5-VL shapes scorer (research.shapes_scorer): oracle-labelled streams, initial scorer."""

import random

import pytest
import torch

from research.shapes_scorer.shapes_data import QUERY, StreamTable, build_streams, load_rows
from tests.reward.reward_pairs import build_shapes
from training.dataset.oracle import judge
from training.reward import load_scorer


@pytest.fixture(scope="module")
def fresh_shapes(tmp_path_factory):
    """A small shapes dataset built now, from a seed no training run used."""
    out = tmp_path_factory.mktemp("shapes") / "data"
    return build_shapes(out, 12, 90210)


def test_streams_are_labelled_by_the_oracle(fresh_shapes):
    from training.reward.models.tiny import build_tiny_qwen25vl

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
        for text, label in zip(s.texts, s.labels, strict=True):
            assert judge(images[s.image], text).all == bool(label), text
    batch = table.batch(streams[:4])
    query = table.tok.convert_tokens_to_ids(table.tok.tokenize(QUERY))[0]
    at = batch["targets"] != -100
    assert (batch["input_ids"][at] == query).all()
    assert at.sum() == sum(len(s.texts) for s in streams[:4])
    ids, targets = batch["input_ids"], batch["targets"]
    for i in range(4):  # teacher forcing: a verdict comes right after its query, never before it
        queries = (targets[i] != -100).nonzero().flatten().tolist()
        for q, nxt in zip(queries, queries[1:], strict=False):
            assert ids[i, q + 1] == targets[i, q]
            assert not {table.yes_id, table.no_id} & set(ids[i, q + 2: nxt].tolist())


def test_initial_scorer_reads_the_base_yes_no_answer(tmp_path):
    """make_initial_scorer: the scorer's mean is the base's logit(Yes) - logit(No) at the query token."""
    from PIL import Image
    from transformers import Qwen2_5_VLForConditionalGeneration

    from research.shapes_scorer.shapes_init import make_initial_scorer
    from training.reward.models.tiny import save_tiny_qwen25vl

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
    from research.shapes_scorer.shapes_data import Stream

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
