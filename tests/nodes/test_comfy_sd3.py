"""The ComfyUI SD3.5 backend (nodes/comfy/family_sd3.py) against diffusers: ComfyUI's own SD3 MODEL, loaded by its stock
diffusion model loader from a tiny SD3Transformer2DModel's weights (SD3.5-medium-like: RMS qk-norm, one dual-attention
block), with the same LoRA, conditioning and noise as the diffusers transformer with training/grpo's LoRA gives the same
velocities (with and without true CFG), CFG log-probs and LoRA gradients within 1e-4; the export is the diffusers
export, and ComfyUI's LoRA loader applies it to every adapted weight with the trained effect. The GRPO node recognises
the family and its default targets.
"""

from __future__ import annotations

import pytest
import torch

from .comfy_inprocess import import_comfy

REASON = import_comfy()
pytestmark = [pytest.mark.skipif(bool(REASON), reason=REASON or "ComfyUI importable"), pytest.mark.slow,
              pytest.mark.real_parts]  # fmt: skip
# the 2 blocks' adapted modules: 12 in the first, 9 in the last (no text output: no to_add_out, no ff_context)
MODULES = 12 + 9  # the last block's add_q_proj gets no gradient in either backend: its text queries are not output
WEIGHTS = 8 + 5  # ComfyUI weights they live in: per stream one fused qkv, proj, fc1, fc2 (the last text stream: qkv)


@pytest.fixture(scope="module")
def backends():
    from nodes.comfy.families import comfy_policy, default_lora_targets, family_of

    from .family_checks import randomize_lora
    from .tiny_comfy_parts import FixedClip
    from .tiny_flow_comfy import (
        SD3_POOLED,
        SD3_TEXT,
        DiffusersReference,
        comfy_sd3_model,
        tiny_sd3_transformer,
    )

    transformer = tiny_sd3_transformer(seed=0)
    model = comfy_sd3_model(transformer)  # before the LoRA is attached: the base weights
    assert family_of(model) == "SD3.5"
    targets = default_lora_targets("SD3.5")
    clip = FixedClip(SD3_TEXT, SD3_POOLED)
    d = DiffusersReference(transformer, clip, rank=4, alpha=8.0, targets=targets)
    randomize_lora(d)
    c = comfy_policy(model, clip, None, lora_rank=4, lora_alpha=8.0, lora_targets=targets)
    c.load_lora_state_dict(d.lora_state_dict())
    return d, c, model


def test_sd3_is_a_family_with_diffusers_targets(backends):
    from nodes.comfy.family_sd3 import ComfySD3Policy

    _, c, model = backends
    assert isinstance(c, ComfySD3Policy)
    qkv = "diffusion_model.joint_blocks.0.x_block.attn.qkv.weight"
    assert [m for m, _, _ in c.adapters[qkv].parts] == [f"transformer_blocks.0.attn.to_{n}" for n in "qkv"]
    assert c.adapters[qkv].parts[2][1:] == (256, 128)  # v: rows 256..384 of the fused weight


def test_same_velocities_with_and_without_cfg(backends):
    from .family_checks import check_velocities

    d, c, _ = backends
    check_velocities(d, c)


def test_same_cfg_log_probs_and_lora_gradients(backends):
    from .family_checks import check_cfg_log_probs_and_gradients

    d, c, _ = backends
    check_cfg_log_probs_and_gradients(d, c, MODULES)


def test_same_lora_gradients_without_checkpointing(backends):
    from nodes.comfy.families import comfy_policy, default_lora_targets

    from .family_checks import check_cfg_log_probs_and_gradients

    d, c, model = backends
    plain = comfy_policy(model, c.clip, None, lora_rank=4, lora_alpha=8.0, lora_targets=default_lora_targets("SD3.5"),
                         gradient_checkpointing=False)  # fmt: skip
    plain.load_lora_state_dict(d.lora_state_dict())
    check_cfg_log_probs_and_gradients(d, plain, MODULES)


def test_export_loads_through_comfyui_lora_loader(backends, caplog):
    from .family_checks import check_export_loads

    d, c, model = backends
    check_export_loads(d, c, model, caplog, WEIGHTS)


def test_negative_conditioning_input_is_used(backends):
    """The node's `negative` CONDITIONING replaces the encoded "" (the SD3 CLIP's cond and pooled_output)."""
    from nodes.comfy.family_sd3 import ComfySD3Policy

    from .tiny_comfy_parts import FixedClip

    d, c, model = backends
    clip = c.clip
    out = clip.encode_from_tokens("blurry, low quality")
    policy = ComfySD3Policy(model, clip, None, negative=[[out["cond"], out]], lora_rank=4, lora_alpha=8.0,
                            lora_targets=["attn.to_q"])  # fmt: skip
    embeds = policy.encode_prompts(["a cat"])
    torch.testing.assert_close(embeds.negative_embeds[0], out["cond"][0])
    torch.testing.assert_close(embeds.negative_pooled[0], out["pooled_output"][0])
    with pytest.raises(ValueError, match="pooled_output"):
        ComfySD3Policy(model, FixedClip(8), None, negative=[[out["cond"], {}]], lora_rank=4, lora_alpha=8.0,
                       lora_targets=["attn.to_q"])  # fmt: skip


def test_unsupported_models_are_refused_in_one_line():
    from nodes.comfy.families import UnsupportedModel, family_of

    class ChromaRadiance:  # a subclass of a trained family in a different (pixel) space: refused too
        pass

    class Patcher:
        model = ChromaRadiance()

    with pytest.raises(UnsupportedModel) as info:
        family_of(Patcher())
    message = str(info.value)
    assert "\n" not in message and "ChromaRadiance" in message
    assert all(name in message for name in ("Flux", "Qwen-Image", "SD3.5", "Chroma"))


def test_two_grpo_steps_in_the_trainer(backends, tmp_path):
    from .family_checks import check_trains_in_the_trainer

    _, c, model = backends
    check_trains_in_the_trainer(model, c.clip, "SD3.5", tmp_path)
