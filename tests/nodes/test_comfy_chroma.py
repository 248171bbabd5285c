"""The ComfyUI Chroma backend (nodes/comfy/family_chroma.py) against diffusers: ComfyUI's own Chroma MODEL with a tiny
ChromaTransformer2DModel's weights (tests/nodes/tiny_flow_comfy.py says why 28 + 2 blocks), with the same LoRA,
conditioning and noise as the diffusers transformer with training/grpo's LoRA, gives the same velocities (with and
without true CFG), CFG log-probs and LoRA gradients within 1e-4. The prompts encode to different lengths, as ComfyUI's
unpadded T5 gives them: ComfyUI runs each length unpadded, diffusers pads with the text mask. The export is the
diffusers export, and ComfyUI's LoRA loader applies it to every adapted weight with the trained effect.
"""

from __future__ import annotations

import pytest

from .comfy_inprocess import import_comfy

REASON = import_comfy()
pytestmark = [pytest.mark.skipif(bool(REASON), reason=REASON or "ComfyUI importable"), pytest.mark.slow,
              pytest.mark.real_parts]  # fmt: skip
DOUBLE, SINGLE = 28, 2
MODULES = 12 * DOUBLE + 5 * SINGLE  # Flux's targets: 12 a double block; to_q/k/v, proj_mlp, proj_out a single one
WEIGHTS = 8 * DOUBLE + 2 * SINGLE  # per stream qkv, proj, mlp.0, mlp.2; a single block's linear1 and linear2


@pytest.fixture(scope="module")
def backends():
    from nodes.comfy.families import comfy_policy, default_lora_targets, family_of

    from .family_checks import randomize_lora
    from .tiny_comfy_parts import FixedClip
    from .tiny_flow_comfy import CHROMA_TEXT, DiffusersReference, comfy_chroma_model, tiny_chroma_transformer

    transformer = tiny_chroma_transformer(seed=0)
    model = comfy_chroma_model(transformer)
    assert family_of(model) == "Chroma"
    targets = default_lora_targets("Chroma")
    clip = FixedClip(CHROMA_TEXT, length=lambda prompt: 3 + len(prompt) % 7)
    d = DiffusersReference(transformer, clip, rank=4, alpha=8.0, targets=targets)
    randomize_lora(d)
    c = comfy_policy(model, clip, None, lora_rank=4, lora_alpha=8.0, lora_targets=targets)
    c.load_lora_state_dict(d.lora_state_dict())
    return d, c, model


def test_chroma_is_a_family_with_flux_targets(backends):
    from nodes.comfy.family_chroma import ComfyChromaPolicy

    from .family_checks import PROMPTS

    _, c, _ = backends
    assert isinstance(c, ComfyChromaPolicy)
    linear1 = "diffusion_model.single_blocks.0.linear1.weight"
    assert [m for m, _, _ in c.adapters[linear1].parts] == [
        f"single_transformer_blocks.0.{n}" for n in ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")]
    lengths = c.encode_prompts(PROMPTS).mask.sum(1).tolist()
    assert len(set(lengths)) == 2  # the checks below run prompts of two text lengths


def test_same_velocities_with_and_without_cfg(backends):
    from .family_checks import check_velocities

    d, c, _ = backends
    check_velocities(d, c)


def test_same_cfg_log_probs_and_lora_gradients(backends):
    from .family_checks import check_cfg_log_probs_and_gradients

    d, c, _ = backends
    check_cfg_log_probs_and_gradients(d, c, MODULES)


def test_export_loads_through_comfyui_lora_loader(backends, caplog):
    from .family_checks import check_export_loads

    d, c, model = backends
    check_export_loads(d, c, model, caplog, WEIGHTS)


def test_same_lora_gradients_without_checkpointing(backends):
    """Without checkpointing the blocks' in-place residual adds meet autograd directly (policy.norm_input_copies)."""
    from nodes.comfy.families import comfy_policy, default_lora_targets

    from .family_checks import check_cfg_log_probs_and_gradients

    d, c, model = backends
    plain = comfy_policy(model, c.clip, None, lora_rank=4, lora_alpha=8.0, lora_targets=default_lora_targets("Chroma"),
                         gradient_checkpointing=False)  # fmt: skip
    plain.load_lora_state_dict(d.lora_state_dict())
    check_cfg_log_probs_and_gradients(d, plain, MODULES)


def test_two_grpo_steps_in_the_trainer(backends, tmp_path):
    from .family_checks import check_trains_in_the_trainer

    _, c, model = backends
    check_trains_in_the_trainer(model, c.clip, "Chroma", tmp_path)
