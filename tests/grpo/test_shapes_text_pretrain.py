"""The generator recipe's T5 pretraining stage (training/grpo/recipes/shapes_text_pretrain.py): word order, each
object word's roles and its whole object, put into a small T5 by the text objectives alone."""

from __future__ import annotations

import torch

from research.shapes_grpo.shapes_order_probe import set_distance


def test_text_pretraining_puts_word_order_into_a_t5():
    """A bag-of-words T5 sees a prompt and its role-swapped twin as one set of tokens; the position objective of the
    text pretraining stage makes them different sets."""
    from transformers import T5Config, T5EncoderModel

    from training.grpo.recipes.shapes_text_pretrain import PAD_ID, text_losses

    torch.manual_seed(0)
    config = T5Config(vocab_size=20, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, dropout_rate=0.0,
                      feed_forward_proj="gated-gelu", relative_attention_num_buckets=8)  # fmt: skip
    t5 = T5EncoderModel(config)
    with torch.no_grad():  # no position bias: a bag of words, as the first recipe's jointly trained T5 came out
        t5.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight.zero_()
    head = torch.nn.Linear(32, 8)
    words = torch.randint(3, 20, (256, 6))
    ids = torch.cat([words, torch.full((256, 2), PAD_ID)], dim=1)
    twin = torch.cat([words.flip(1), torch.full((256, 2), PAD_ID)], dim=1)

    def twin_distance() -> float:
        with torch.no_grad():
            a, b = t5(ids[:16])[0], t5(twin[:16])[0]
        return sum(set_distance(a[i, :6], b[i, :6]) for i in range(16)) / 16

    before = twin_distance()
    optimizer = torch.optim.AdamW([*t5.parameters(), *head.parameters()], lr=1e-2)
    g = torch.Generator().manual_seed(0)
    first = None
    for _ in range(80):
        losses = text_losses(t5, {"position": head}, ids[torch.randint(256, (64,), generator=g)], g)
        assert all(torch.isfinite(v) for v in losses.values())
        first = first or {k: v.item() for k, v in losses.items()}
        optimizer.zero_grad()
        (losses["mlm"] + losses["position"]).backward()
        optimizer.step()
    after = twin_distance()
    assert before < 1e-3  # the same set of vectors for a sequence and its reversal
    assert losses["position"].item() < 0.85 * first["position"]
    assert after > 0.01  # the shipped T5: 0.0003; the pretrained one: 0.076


def test_role_targets_follow_the_parse_not_the_word_order():
    """Each colour and shape word gets its object's roles over the whole prompt; role-swapped twins get swapped bits."""
    from training.common.tiny_flux import build_tiny_t5_tokenizer
    from training.grpo.recipes.shapes_text_pretrain import ROLES, role_targets

    tok = build_tiny_t5_tokenizer()

    def roles(prompt: str) -> dict[str, set]:
        tokens = tok.convert_ids_to_tokens(tok(prompt, padding="max_length", max_length=40).input_ids)
        bits, where = role_targets(tokens, prompt, 40)
        found: dict[str, set] = {}
        for t, b, w in zip(tokens, bits, where, strict=True):
            if w:
                found.setdefault(t.lstrip("\u2581"), set()).update(ROLES[i] for i in b.nonzero().flatten().tolist())
        return found

    three = roles("a green square above a yellow circle, a blue square below the green square, and the blue square "
                  "to the right of the yellow circle")
    assert three["green"] == {("above", "subject"), ("below", "object")}
    assert three["yellow"] == three["circle"] == {("above", "object"), ("right_of", "object")}
    assert three["blue"] == {("below", "subject"), ("right_of", "subject")}
    a, b = roles("a red circle to the left of a blue square"), roles("a blue square to the left of a red circle")
    assert a["red"] == b["blue"] == {("left_of", "subject")} and a["blue"] == b["red"] == {("left_of", "object")}
    bits, where = role_targets(["\u2581hello"], "not a shapes prompt", 4)
    assert not where.any() and not bits.any()  # unparsable text: no targets, no error


def test_role_objective_teaches_a_small_t5_who_is_left_of_whom():
    """With the role probe, a small T5 learns each object word's roles from the prompt text, all 8 bits of them (the
    word alone cannot tell: a colour word is a subject or an object equally often)."""
    from transformers import T5Config, T5EncoderModel

    from training.common.tiny_flux import build_tiny_t5_tokenizer
    from training.dataset.prompts import plain_prompt
    from training.grpo.recipes.shapes_data import training_scenes
    from training.grpo.recipes.shapes_text_pretrain import (
        ROLES,
        RoleProbe,
        role_accuracy,
        role_target_batch,
        text_losses,
    )

    tok = build_tiny_t5_tokenizer()
    prompts = [plain_prompt(s) for s in training_scenes(512, 5, ())]
    ids = tok(prompts, padding="max_length", max_length=40, truncation=True, return_tensors="pt").input_ids
    roles = role_target_batch(tok, ids, prompts)
    torch.manual_seed(0)
    t5 = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=4,
                                 dropout_rate=0.0, feed_forward_proj="gated-gelu", relative_attention_num_buckets=16,
                                 relative_attention_max_distance=48))  # fmt: skip
    heads = {"position": torch.nn.Linear(32, 40), "roles": RoleProbe(32, len(ROLES), 1.0)}
    before = role_accuracy(t5, heads["roles"], ids, roles)
    params = [*t5.parameters(), *heads["position"].parameters(), *heads["roles"].parameters()]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    g = torch.Generator().manual_seed(0)
    t5.train()
    for _ in range(300):
        index = torch.randint(len(ids), (64,), generator=g)
        losses = text_losses(t5, heads, ids[index], g, (roles[0][index], roles[1][index]))
        optimizer.zero_grad()
        (losses["mlm"] + losses["position"] + 4 * losses["roles"]).backward()
        optimizer.step()
    after = role_accuracy(t5, heads["roles"], ids, roles)
    assert after > 0.4 and before < 0.1, (before, after)  # every one of 8 bits right; 0.54 measured at 300 steps


def test_identity_targets_name_the_whole_object_at_each_of_its_words():
    """The colour word carries its object's shape and the shape word its colour, wherever the object is named again
    (\"the blue square\"); other words and unreadable prompts get no target."""
    from training.common.tiny_flux import build_tiny_t5_tokenizer
    from training.dataset.oracle import COLORS, SHAPES
    from training.grpo.recipes.shapes_text_pretrain import IGNORE, identity_target_batch, identity_targets

    tok = build_tiny_t5_tokenizer()
    prompt = "a green square above a yellow circle, and a blue triangle below the green square"
    ids = tok([prompt], padding="max_length", max_length=40, return_tensors="pt").input_ids
    tokens = tok.convert_ids_to_tokens(ids[0])
    target = identity_target_batch(tok, ids, [prompt])[0]
    named = [(tokens[i].lstrip("\u2581"), COLORS[c], SHAPES[s]) for i, (c, s) in enumerate(target.tolist()) if c != IGNORE]
    assert named == [("green", "green", "square"), ("square", "green", "square"), ("yellow", "yellow", "circle"),
                     ("circle", "yellow", "circle"), ("blue", "blue", "triangle"), ("triangle", "blue", "triangle"),
                     ("green", "green", "square"), ("square", "green", "square")]  # fmt: skip
    assert (target[[i for i, t in enumerate(tokens) if t.lstrip("\u2581") in ("a", "above", "and")]] == IGNORE).all()
    assert (identity_targets(["\u2581hello"], "not a shapes prompt", 4) == IGNORE).all()
