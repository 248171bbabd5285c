"""The closed-form shared-prefix positions equal transformers' get_rope_index on the concatenated sequence."""

import torch

from tests.reward.test_scorer import shapes
from training.reward import load_model
from training.reward.models.rope import prefix_positions, suffix_positions


def test_positions_match_get_rope_index(tiny_scorer_full):
    model = load_model(tiny_scorer_full)
    inner = model.vlm.model
    prompts = ["a red circle", "a b c d e f g h", "a red circle", "x"]
    images = shapes(4)
    parts = [model.format_chat.split(p) for p in prompts]
    tok = model.processor.tokenizer
    pre = tok([b for b, _ in parts], return_tensors="pt", padding=True, padding_side="left",
              add_special_tokens=False)
    suf = model.processor(text=[a for _, a in parts], images=images, return_tensors="pt", padding=True,
                          padding_side="right")
    ids = torch.cat([pre["input_ids"], suf["input_ids"]], 1)
    mask = torch.cat([pre["attention_mask"], suf["attention_mask"]], 1)
    types = torch.cat([torch.zeros_like(pre["input_ids"]), suf["mm_token_type_ids"]], 1)
    expected, _ = inner.get_rope_index(ids, mm_token_type_ids=types, image_grid_thw=suf["image_grid_thw"],
                                       attention_mask=mask)
    n_pre = pre["input_ids"].shape[1]
    got_pre = prefix_positions(pre["attention_mask"])
    got_suf = suffix_positions(pre["attention_mask"].sum(1), suf["attention_mask"], suf["image_grid_thw"], 2)
    real_pre = pre["attention_mask"].bool()
    real_suf = suf["attention_mask"].bool()
    assert torch.equal(got_pre[:, real_pre], expected[:, :, :n_pre][:, real_pre])
    assert torch.equal(got_suf[:, real_suf], expected[:, :, n_pre:][:, real_suf])
    assert len({tuple(g.tolist()) for g in suf["image_grid_thw"]}) > 1, "needs images of different grids"
