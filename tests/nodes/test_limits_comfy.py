"""Server-side limits on ComfyUI's own classes, in process (run with ComfyUI's venv python):

- every number widget of every node is range-checked on the server: by ComfyUI when the node's validate_inputs
  does not take it, else by validate_inputs against the limits the schema declares, with one exception (ComfyUI
  reports a returned string once per input validate_inputs takes);
- the memory guard reads the same sizes from the shapes generator that ComfyUI loaded as from its diffusers folder,
  and refuses a best-of-N that cannot fit; it reads ComfyUI's own Qwen-Image, SD3 (MMDiT) and Flux transformers and
  Wan VAE, and the block weights it counts are their blocks' real weights.

Skipped with the reason when ComfyUI does not import in this python (run with .comfyui/venv/bin/python).
"""

from __future__ import annotations

import asyncio
import inspect
import math

import pytest

from .comfy_inprocess import import_comfy

REASON = import_comfy()
pytestmark = [pytest.mark.skipif(bool(REASON), reason=REASON or "ComfyUI importable"), pytest.mark.real_parts]


def _node_classes():
    from nodes.extension import SpatialScoreExtension

    return asyncio.run(SpatialScoreExtension().get_node_list())


def _takes(cls, name: str) -> bool:
    """Whether ComfyUI hands `name` to the node's validate_inputs (and so skips its own min/max check of it)."""
    from comfy_api.internal import first_real_override

    method = first_real_override(cls, "validate_inputs")
    if method is None:
        return False
    spec = inspect.getfullargspec(method)
    return name in spec.args or spec.varkw is not None


def _defaults(schema) -> dict:
    values = {}
    for spec in schema.inputs:
        if getattr(spec, "options", None):
            values[spec.id] = spec.default if spec.default is not None else spec.options[0]
        elif getattr(spec, "default", None) is not None:
            values[spec.id] = spec.default
    return values


def _validate(cls, values: dict):
    """Call validate_inputs as ComfyUI does: with the inputs it takes."""
    from comfy_api.internal import first_real_override

    spec = inspect.getfullargspec(first_real_override(cls, "validate_inputs"))
    taken = values if spec.varkw is not None else {k: v for k, v in values.items() if k in spec.args}
    return cls.validate_inputs(**taken)


def _out_of_range(spec) -> list:
    bad = []
    if spec.max is not None:
        bad.append(spec.max + 1)
    if spec.min is not None:
        bad.append(spec.min - 1)
    if isinstance(spec.default, float):
        bad.append(math.nan)
    return bad


def _refusal(cls, values: dict, name: str, value) -> str | None:
    """None when validate_inputs refuses `value` for `name` with one InvalidInputs naming it, else what it did."""
    from nodes.logic.widget_limits import InvalidInputs

    try:
        answer = _validate(cls, values)
    except InvalidInputs as exc:
        if str(exc).startswith(f"{name}: {value}"):
            return None
        return f"refused, but not naming it first: {exc}"
    except Exception as exc:  # noqa: BLE001 - reported below with the node and input
        return f"raised {type(exc).__name__}: {exc} (use nodes.logic.widget_limits.accept)"
    return f"answered {answer!r} (a string is reported once per input; use accept(widget_errors(cls, values)))"


def test_every_number_widget_is_range_checked_on_the_server_once():
    problems, checked = [], []
    for cls in _node_classes():
        schema = cls.define_schema()
        for spec in schema.inputs:
            if getattr(spec, "min", None) is None and getattr(spec, "max", None) is None:
                continue
            if not _takes(cls, spec.id):
                continue  # ComfyUI 0.3.64 checks min and max of inputs validate_inputs does not take
            for value in _out_of_range(spec):
                problem = _refusal(cls, {**_defaults(schema), spec.id: value}, spec.id, value)
                if problem:
                    problems.append(f"{cls.__name__}.{spec.id} = {value}: {problem}")
                checked.append((cls.__name__, spec.id))
    assert problems == []
    names = {name for name, _ in checked}
    assert {"SpatialScoreBestOfNSampler", "SpatialScoreGRPOTrain", "SpatialScoreRerank"} <= names
    assert ("SpatialScoreBestOfNSampler", "n") in checked and ("SpatialScoreGRPOTrain", "width") in checked


def test_the_workflow_values_of_the_examples_pass():
    from nodes.bestofn import SpatialScoreBestOfNSampler
    from nodes.grpo import SpatialScoreGRPOTrain

    bestofn = {**_defaults(SpatialScoreBestOfNSampler.define_schema()), "prompt": "a red circle", "n": 16,
               "width": 64, "height": 64}  # fmt: skip
    assert _validate(SpatialScoreBestOfNSampler, {**bestofn, "model": None, "vae": None}) is True
    grpo = {**_defaults(SpatialScoreGRPOTrain.define_schema()), "prompts": "a red circle\na blue square"}
    assert _validate(SpatialScoreGRPOTrain, grpo) is True


@pytest.fixture(scope="module")
def shapes():
    import torch

    from nodes.comfy.shapes_generator import load_shapes_generator

    torch.set_num_threads(1)
    model, clip, vae = load_shapes_generator("shapes")
    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a red circle to the left of a blue square"))
    return model, vae, positive


def test_the_sizes_comfyui_loaded_are_the_folders_sizes(shapes):
    from nodes.logic.memory_check import comfy_sizes
    from training.common.memory_guard import flux_folder_sizes
    from training.grpo.shipped import GENERATORS

    model, vae, positive = shapes
    theirs = comfy_sizes(model, vae, positive)
    ours = flux_folder_sizes(GENERATORS["shapes"], act_bytes=4, text_tokens=40)
    assert theirs == ours.__class__(**{**ours.__dict__, "weight_bytes": 0})


def test_best_of_n_that_cannot_fit_is_refused_on_the_real_objects(shapes):
    from nodes.logic.memory_check import check_best_of_n
    from training.common.memory_guard import GIB, Free, MemoryLimitError

    model, vae, positive = shapes
    ram = Free(4 * GIB, 4 * GIB, "RAM")
    check_best_of_n(model, vae, positive, 16, 64, 64, 1.0, ram)
    with pytest.raises(MemoryLimitError, match=r"^n=256 at 8192x8192 needs about [0-9.]+ GiB, 4\.0 GiB free in RAM: "
                                               r"not even n=1 fits at 8192x8192; at most \d+x\d+ fits at n=1$"):
        check_best_of_n(model, vae, positive, 256, 8192, 8192, 1.0, ram)


def _block_weights(block) -> int:
    """Elements of a block's weight matrices (what comfy/ops.py casts; biases and norms are negligible)."""
    return sum(p.numel() for p in block.parameters() if p.dim() >= 2)


def test_memory_check_reads_comfyuis_own_transformers_and_wan_vae():
    """Built small from ComfyUI's classes: the attributes transformer_shape reads exist there, and each family's
    largest block holds block_weights x width^2 weights (Flux's double block and SD3.5-medium's dual-attention
    block exactly; Qwen-Image's too)."""
    from types import SimpleNamespace

    import comfy.ops
    import torch
    from comfy.ldm.flux.model import Flux
    from comfy.ldm.modules.diffusionmodules.mmdit import MMDiT
    from comfy.ldm.qwen_image.model import QwenImageTransformer2DModel
    from comfy.ldm.wan.vae import WanVAE

    from nodes.logic.memory_check import transformer_shape, vae_decode_bytes_per_pixel

    ops = comfy.ops.disable_weight_init
    qwen = QwenImageTransformer2DModel(num_layers=2, attention_head_dim=16, num_attention_heads=2,
                                       joint_attention_dim=24, axes_dims_rope=(4, 6, 6), operations=ops)
    shape = transformer_shape(qwen)
    assert (shape.family, shape.hidden, shape.blocks, shape.text_width, shape.patch) == ("Qwen-Image", 32, 2, 24, 2)
    assert _block_weights(qwen.transformer_blocks[0]) == shape.block_weights * 32**2

    mmdit = MMDiT(depth=2, patch_size=2, in_channels=16, adm_in_channels=24, pos_embed_max_size=16, num_patches=256,
                  context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 40, "out_features": 128}},
                  qk_norm="rms", x_block_self_attn_layers=[0], operations=ops)  # fmt: skip
    shape = transformer_shape(mmdit)
    assert (shape.family, shape.hidden, shape.blocks, shape.text_width, shape.patch) == ("SD3", 128, 2, 40, 2)
    assert _block_weights(mmdit.joint_blocks[0]) == shape.block_weights * 128**2 == 43 * 128**2

    flux = Flux(in_channels=16, out_channels=16, vec_in_dim=16, context_in_dim=24, hidden_size=32, mlp_ratio=4.0,
                num_heads=2, depth=1, depth_single_blocks=1, axes_dim=[4, 6, 6], theta=10000, patch_size=2, qkv_bias=True,
                guidance_embed=False, operations=ops)  # fmt: skip
    shape = transformer_shape(flux)
    assert (shape.hidden, shape.blocks, shape.text_width, shape.lora_widths) == (32, 2, 24, 36 + 17)
    assert _block_weights(flux.double_blocks[0]) == shape.block_weights * 32**2
    assert _block_weights(flux.single_blocks[0]) == 15 * 32**2

    wan = SimpleNamespace(first_stage_model=WanVAE(dim=8, z_dim=4, dim_mult=[1, 2, 4, 4], num_res_blocks=2),
                          latent_channels=4, downscale_ratio=(lambda frames: frames, 8, 8), vae_dtype=torch.float32)
    # fp32: its full-resolution 8 channels live 6 times; every level's (8, 16, 32, 32 channels) cached 7 times
    assert vae_decode_bytes_per_pixel(wan, 4) == (6 * 8 + 7 * (8 + 16 / 4 + 32 / 16 + 32 / 64)) * 4
    decoder = wan.first_stage_model.decoder
    caching = [m for m in decoder.modules() if type(m).__name__ == "CausalConv3d" and m.kernel_size[-1] == 3]
    # what the 7 copies a level stand for: 3 residual blocks x 2 convolutions a level, the output convolution at
    # full resolution; the input convolution and the middle's 2 blocks at 1/64 of the pixels
    assert len(caching) == 4 * 3 * 2 + 1 + 1 + 2 * 2
