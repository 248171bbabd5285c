"""The scorer on tiny Qwen2.5-VL models: loading, batch invariance, image forms, zero-shot, LoRA parameters."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from training.reward import ScorerConfig, create_model, load_model, load_scorer, save_model
from training.reward.config import HeadConfig, LoraSettings

PROMPT = "a red circle to the left of a blue square"


def shapes(n=6):
    rng = np.random.default_rng(0)
    sizes = [(64, 64), (96, 64), (64, 128), (77, 53), (200, 120), (64, 64), (31, 45), (90, 90)]
    return [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in sizes[:n]]


def perturb_trainables(model, seed=0):
    """Give LoRA B and the reward token row non-trivial values, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad and not name.startswith("head"):
                p.add_(torch.randn(p.shape, generator=g) * 0.05)


def test_save_load_full_gives_identical_scores(tiny_scorer_full, tmp_path):
    scorer = load_scorer(tiny_scorer_full)
    images = shapes()
    first = scorer.score(images, PROMPT)
    save_model(scorer.model, tmp_path / "copy")
    again = load_scorer(tmp_path / "copy").score(images, PROMPT)
    assert first.mode == "reward"
    torch.testing.assert_close(first.mean, again.mean, rtol=0, atol=0)
    torch.testing.assert_close(first.std, again.std, rtol=0, atol=0)


def test_lora_scorer_trains_only_adapter_head_and_token(tiny_base, tmp_path):
    config = ScorerConfig(weights="lora", lora=LoraSettings(rank=4, alpha=8), head=HeadConfig(hidden_size=32),
                          max_pixels=112 * 112)
    model = create_model(tiny_base, config)
    cfg = model.vlm.get_base_model().config.text_config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    q_out, kv_out = cfg.num_attention_heads * head_dim, cfg.num_key_value_heads * head_dim
    per_layer = sum(4 * (cfg.hidden_size + out) for out in (q_out, kv_out, kv_out)) + 4 * (q_out + cfg.hidden_size)
    lora_params = cfg.num_hidden_layers * per_layer
    head_params = cfg.hidden_size * 32 + 32 + 32 * 2 + 2
    token_row = cfg.hidden_size
    trainable = {n: p.numel() for n, p in model.named_parameters() if p.requires_grad}
    assert sum(trainable.values()) == lora_params + head_params + token_row
    assert not any("visual" in n for n in trainable), "LoRA must not touch the vision tower"
    # Gradients reach exactly the trainable set.
    model.train()
    batch = model.encode(shapes(2), [PROMPT, PROMPT])
    mean, log_std = model(batch)
    (mean.sum() + log_std.sum()).backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any("lora_B" in n for n in grads) and any("trainable_tokens" in n for n in grads)
    assert grads <= set(trainable)


def test_lora_scorer_save_load_round_trip(tiny_base, tmp_path):
    config = ScorerConfig(weights="lora", lora=LoraSettings(rank=4, alpha=8), head=HeadConfig(hidden_size=32),
                          max_pixels=112 * 112)
    model = create_model(tiny_base, config, seed=3).eval()
    perturb_trainables(model)
    images = shapes(4)
    with torch.no_grad():
        before = model(model.encode(images, [PROMPT] * 4))[0]
    folder = save_model(model, tmp_path / "lora-scorer")
    saved = json.loads((folder / "spatialscore.json").read_text())
    assert saved["weights"] == "lora" and saved["base_model"] == str(tiny_base.resolve())
    assert not (folder / "model").exists(), "a LoRA scorer must not copy the base weights"
    after = load_scorer(folder).score(images, PROMPT).mean
    torch.testing.assert_close(before, after, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_score_does_not_depend_on_batch(tiny_scorer_full, batch_size):
    images = shapes(8)
    prompts = [PROMPT, "a blue square", PROMPT + " and a green triangle above the square", "x"] * 2
    one_at_a_time = load_scorer(tiny_scorer_full, batch_size=1)
    alone = torch.cat([one_at_a_time.score([im], [p]).mean for im, p in zip(images, prompts, strict=True)])
    batched = load_scorer(tiny_scorer_full, batch_size=batch_size).score(images, prompts).mean
    assert (alone - batched).abs().max() < 1e-4


def test_image_forms_agree(tiny_scorer_full):
    scorer = load_scorer(tiny_scorer_full)
    rgb = shapes(1)[0]
    arr = np.asarray(rgb)
    reference = scorer.score([rgb], PROMPT).mean
    as_numpy = scorer.score([arr], PROMPT).mean
    as_float = scorer.score(torch.from_numpy(arr).float().div(255).unsqueeze(0), PROMPT).mean  # ComfyUI IMAGE
    as_rgba = scorer.score([Image.fromarray(np.dstack([arr, np.full(arr.shape[:2], 255, np.uint8)]))], PROMPT).mean
    as_16bit = scorer.score([arr.astype(np.uint16) * 257], PROMPT).mean
    for other in (as_numpy, as_float, as_rgba, as_16bit):
        torch.testing.assert_close(other, reference, atol=1e-5, rtol=0)
    gray = scorer.score([rgb.convert("L"), Image.new("I;16", (33, 47), 40000)], PROMPT)
    assert torch.isfinite(gray.mean).all()


def test_zero_shot_is_yes_minus_no_log_probability(tiny_base):
    scorer = load_scorer(tiny_base)
    images = shapes(3)
    result = scorer.score(images, PROMPT)
    assert result.mode == "zero-shot"
    assert torch.equal(result.std, torch.zeros(3))
    model = scorer.model
    tok = model.processor.tokenizer
    yes, no = tok.encode("Yes")[0], tok.encode("No")[0]
    for i, im in enumerate(images):  # independent path: the full LM forward, one image at a time
        batch = model.encode([im], [PROMPT])
        with torch.no_grad():
            logp = model.vlm(**batch).logits[0, -1].float().log_softmax(-1)
        assert abs(float(logp[yes] - logp[no]) - float(result.mean[i])) < 1e-4


def test_progress_reports_every_batch(tiny_scorer_full):
    calls = []
    load_scorer(tiny_scorer_full, batch_size=3).score(shapes(7), PROMPT, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(3, 7), (6, 7), (7, 7)]


def test_loaded_model_is_in_eval_mode_on_cpu_in_fp32(tiny_scorer_full):
    model = load_model(tiny_scorer_full)
    assert not model.training and next(model.parameters()).dtype == torch.float32
    assert model.vlm.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("fixture", ["tiny_scorer_full", "tiny_base"])
def test_shared_prefix_path_equals_one_pass_forward(fixture, request):
    model = load_model(request.getfixturevalue(fixture))
    images = shapes(6)
    prompts = [PROMPT, "a b", PROMPT, "a green triangle below a red circle", "a b", PROMPT]
    with torch.no_grad():
        one_pass = model(model.encode(images, prompts))[0]
    shared = model.score_shared_prefix(images, prompts)[0]
    assert (one_pass - shared).abs().max() < 1e-5
    plain = load_scorer(request.getfixturevalue(fixture), shared_prefix=False, batch_size=4).score(images, prompts)
    torch.testing.assert_close(plain.mean, shared, atol=1e-5, rtol=0)
