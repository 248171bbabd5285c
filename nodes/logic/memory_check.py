"""The memory guard (training.common.memory_guard) for the models ComfyUI loaded: the Best-of-N Sampler and GRPO Train
refuse, before sampling, a count or a size that cannot fit, naming the largest that would.

No ComfyUI import here: the MODEL (a ModelPatcher), the VAE and the conditioning are read by attribute, so the tests
can give the real objects (in ComfyUI's venv) or small stand-ins. The weights are already in RAM on a CPU (where
MemAvailable no longer includes them), so they count as 0 there; on a GPU, where the free memory includes what
ComfyUI's loaded models hold, sampling streams them as needed (0) and GRPO training loads the transformer whole.
"""

from __future__ import annotations

import dataclasses

from .training_import import import_training

import_training("grpo")
from training.common.memory_guard import (  # noqa: E402, F401 - Free and available_ram for nodes/comfy/models.py
    FLOAT32,
    LIVE_LATENTS,
    FlowSizes,
    Free,
    MemoryLimitError,
    Need,
    available_ram,
    check_fits,
    decoder_bytes_per_pixel,
    diffusers_decoder_widths,
    grpo_need,
    image_bytes,
)
from training.grpo.config import TrainConfig  # noqa: E402

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
TRAIN_ROWS = TrainConfig().batch_size  # the node trains with the headless trainer's micro-batch
# Text tokens when the conditioning is not known (GRPO Train encodes its prompts later): the longest prompt the
# family's diffusers pipeline takes, on the high side as the whole estimate (a short prompt gives fewer).
FLUX_TEXT_TOKENS = 512  # FluxPipeline's max_sequence_length (T5); Chroma's T5 the same
QWEN_IMAGE_TEXT_TOKENS = 512  # QwenImagePipeline's max_sequence_length (Qwen2.5-VL, the template's prefix dropped)
SD3_TEXT_TOKENS = 77 + 256  # StableDiffusion3Pipeline: CLIP-L/G's 77 tokens, then T5's max_sequence_length 256
QWEN_IMAGE_TEXT_WIDTH = 3584  # Qwen2.5-VL-7B's hidden size: Qwen-Image's joint_attention_dim
SD3_TEXT_WIDTH = 4096  # T5-XXL's width, CLIP-L + CLIP-G (768 + 1280) zero-padded to it
# A Wan VAE (Qwen-Image's, comfy/ldm/wan/vae.py) decodes with causal 3-D convolutions that each keep a copy of their
# input frame (feat_cache, held to the end of the decode): a level's 3 residual blocks x 2 convolutions, and the
# output convolution at full resolution, 7 copies a level of its tensor, besides the DECODER_COPIES live ones.
CAUSAL_CACHE_COPIES = 7


def _dtype_bytes(dtype) -> int:
    return DTYPE_BYTES.get(str(dtype).removeprefix("torch."), 2)


def vae_scale(vae) -> int:
    """Pixels per latent cell: an int for Flux's and SD3's VAEs, (time, height, width) rules for the Wan VAE of
    Qwen-Image (nodes/comfy/policy.spatial_ratio)."""
    ratio = vae.downscale_ratio
    return int(ratio[-1]) if isinstance(ratio, (tuple, list)) else int(ratio)


def vae_decode_bytes_per_pixel(vae, act_bytes: int) -> int:
    """One image through the VAE's decoder, per output pixel, from the decoder's own channels: ComfyUI's decoder
    (FLUX.1's and SD3's VAE from Load VAE), a diffusers AutoencoderKL behind ComfyUI's VAE (the shapes generator),
    ComfyUI's Wan 2.1 decoder (Qwen-Image's VAE: level i works on dim x dim_mult[i] channels, the upsampled ones
    halved, plus its causal convolutions' caches); else ComfyUI's own decode estimate."""
    first = getattr(vae, "first_stage_model", None)
    config = getattr(getattr(first, "vae", None), "config", None)
    if config is not None and "block_out_channels" in config:
        return decoder_bytes_per_pixel(diffusers_decoder_widths(list(config.block_out_channels)), act_bytes)
    decoder = getattr(first, "decoder", None)
    levels = getattr(decoder, "up", None)
    if levels is not None:  # level i: its blocks' input (upsampled from below) and output channels
        widths = [max(max(block.in_channels, block.out_channels) for block in level.block) for level in levels]
        return decoder_bytes_per_pixel(widths, act_bytes)
    if getattr(decoder, "dim_mult", None) is not None and getattr(decoder, "dim", None):
        widths = [int(decoder.dim) * int(m) for m in decoder.dim_mult]  # full resolution first, level i at 1/2^i
        cached = CAUSAL_CACHE_COPIES * sum(width / 4**i for i, width in enumerate(widths)) * act_bytes
        return decoder_bytes_per_pixel(widths, act_bytes) + int(cached)
    scale, channels = vae_scale(vae), int(vae.latent_channels)
    shape = [1, channels, 1, 8, 8] if isinstance(vae.downscale_ratio, (tuple, list)) else [1, channels, 8, 8]
    return int(vae.memory_used_decode(shape, vae.vae_dtype)) // (64 * scale * scale)


@dataclasses.dataclass(frozen=True)
class Transformer:
    """What the estimate reads of a MODEL's transformer, per family (`transformer_shape`).

    Training memory scales with the width and the number of blocks (each checkpointed block keeps its input for
    the backward; memory_guard's GRAD_WIDTHS_*, measured on FLUX.1-dev, hold for the other families' blocks too:
    the same pre-norm attention + 4x-wide MLP on the joint image-and-text sequence). The LoRA and the cast block
    are counted from the family's own default targets and block layout, in units of the width:
    `lora_widths` x rank x width LoRA parameters, `block_weights` x width^2 weights in the largest block."""

    family: str
    hidden: int  # the blocks' width
    blocks: int  # the blocks checkpointed in training
    text_tokens: int  # when the conditioning is not known
    text_width: int  # the conditioning's width (the text encoder's)
    patch: int  # latent cells per token side
    lora_widths: int
    block_weights: int


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def transformer_shape(net) -> Transformer | None:
    """The family shape of ComfyUI's `model.model.diffusion_model`, read by attribute; None for other architectures
    (UNets: ComfyUI's own estimate is used for sampling, and GRPO refuses them by family).

    LoRA widths count rank x (in + out) of every default target (nodes/comfy/families.default_lora_targets), an MLP
    4x wide: an attention projection d -> d is 2, an MLP's d -> 4d or 4d -> d is 5.
    - Flux and Chroma (double_blocks, single_blocks): a double block's targets are 8 attention projections (16)
      and two streams' MLPs (20), 36; a single block's q, k, v (6), proj_mlp d -> 4d (5) and proj_out 5d -> d (6),
      17. Weights: a double block 36 d^2 (two streams' modulation 6, qkv 3, proj 1, MLP 8), a single block 15
      (Chroma's blocks have no modulation weights, 24 and 12: its estimate is on the high side by that).
    - Qwen-Image (transformer_blocks, inner_dim): every block is double-stream with Flux's double-block targets,
      36, and its weights too (img/txt_mod 6 d^2 each, 8 attention projections, two 4x MLPs), 36 d^2.
    - SD3 / SD3.5 (joint_blocks, hidden_size = 64 x depth): the same 36 a block, but the last block outputs no text
      (context_pre_only: no to_add_out, no ff_context), 24. Weights 36 d^2 a block (adaLN 6, qkv 3, proj 1, MLP 8
      a stream); SD3.5-medium's dual-attention blocks (x_block_self_attn) add a second attention (4) and 3 more
      modulations, 43.
    """
    hidden = getattr(net, "hidden_size", None)
    double, single = len(getattr(net, "double_blocks", ()) or ()), len(getattr(net, "single_blocks", ()) or ())
    if hidden and (double or single):
        context = getattr(getattr(net, "params", None), "context_in_dim", hidden)
        return Transformer("Flux or Chroma", int(hidden), double + single, FLUX_TEXT_TOKENS, int(context),
                           _int(getattr(net, "patch_size", 2), 2), 36 * double + 17 * single,
                           36 if double else 15)  # fmt: skip
    blocks = len(getattr(net, "transformer_blocks", ()) or ())
    if getattr(net, "inner_dim", None) and blocks:
        text_width = getattr(getattr(net, "txt_in", None), "in_features", QWEN_IMAGE_TEXT_WIDTH)
        return Transformer("Qwen-Image", int(net.inner_dim), blocks, QWEN_IMAGE_TEXT_TOKENS, int(text_width),
                           _int(getattr(net, "patch_size", 2), 2), 36 * blocks, 36)  # fmt: skip
    blocks = len(getattr(net, "joint_blocks", ()) or ())
    if hidden and blocks:
        text_width = getattr(getattr(net, "context_embedder", None), "in_features", SD3_TEXT_WIDTH)
        dual = bool(getattr(net, "x_block_self_attn_layers", None))
        return Transformer("SD3", int(hidden), blocks, SD3_TEXT_TOKENS, int(text_width),
                           _int(getattr(net, "patch_size", 2), 2), 36 * blocks - 12, 43 if dual else 36)  # fmt: skip
    return None


def comfy_sizes(model, vae, conditioning=None, weight_bytes: int = 0) -> FlowSizes | None:
    """FlowSizes of a flow transformer MODEL (Flux, Chroma, Qwen-Image, SD3; `transformer_shape`), or None for
    other architectures (UNets). `weight_bytes`: what the weights add to the need (see the module's docstring)."""
    shape = transformer_shape(model.model.diffusion_model)
    if shape is None:
        return None
    act_bytes = _dtype_bytes(getattr(model.model, "manual_cast_dtype", None) or model.model.get_dtype())
    text_tokens, text_width = shape.text_tokens, shape.text_width
    if conditioning:
        _, text_tokens, text_width = conditioning[0][0].shape
    decode = vae_decode_bytes_per_pixel(vae, _dtype_bytes(vae.vae_dtype))
    return FlowSizes(latent_channels=int(vae.latent_channels), vae_scale=vae_scale(vae), hidden=shape.hidden,
                     blocks=shape.blocks, text_tokens=int(text_tokens), text_width=int(text_width),
                     decode_bytes_per_pixel=decode, weight_bytes=weight_bytes, act_bytes=act_bytes,
                     patch=shape.patch)  # fmt: skip


def _unet_row_bytes(model, latent_channels: int, scale: int, height: int, width: int) -> int:
    """ComfyUI's own estimate of one row through a model that is not Flux-like, with the row's latents."""
    latents = (LIVE_LATENTS + 1) * latent_channels * (height // scale) * (width // scale) * FLOAT32
    return int(model.model.memory_required([1, latent_channels, height // scale, width // scale])) + latents


def check_best_of_n(model, vae, positive, n: int, width: int, height: int, cfg: float, free: Free) -> None:
    """The N candidates go through the model as one batch (cond and uncond together when cfg != 1), each keeping its
    x0; their decoded previews are kept in RAM with a copy for the scorer; ComfyUI decodes as many at once as its
    memory allows, at least one."""
    sizes = comfy_sizes(model, vae, positive)
    rows_per_candidate = 1 if cfg == 1.0 else 2
    scale, channels = vae_scale(vae), int(vae.latent_channels)
    decode_per_pixel = vae_decode_bytes_per_pixel(vae, _dtype_bytes(vae.vae_dtype))

    def need(count: int, h: int, w: int) -> Need:
        row = sizes.row_bytes(h, w, 1) if sizes is not None else _unet_row_bytes(model, channels, scale, h, w)
        sampling = count * rows_per_candidate * row
        decoding = decode_per_pixel * h * w + count * channels * (h // scale) * (w // scale) * FLOAT32
        return Need(max(sampling, decoding), 2 * count * image_bytes(h, w))

    check_fits("n=", n, height, width, need, free, 2 * scale)


FP8 = ("float8_e4m3fn", "float8_e5m2")


def lora_train_bytes(net, rank: int) -> int:
    """The LoRA of the family's default targets (`transformer_shape`) in fp32, with its gradients and AdamW's two
    moments, 16 bytes a parameter: rank x width x lora_widths parameters. FLUX.1-dev at rank 32: 36 x 19 + 17 x 38
    widths, 130.7 M parameters, 0.49 GiB (the dry run's figure), 1.95 GiB with its training state; Qwen-Image (60
    blocks of 3072): 212 M, 3.2 GiB; SD3.5-large (38 blocks of 2432): 106 M, 1.6 GiB."""
    shape = transformer_shape(net)
    return 16 * rank * shape.hidden * shape.lora_widths


def block_cast_bytes(net, act_bytes: int) -> int:
    """The largest block's weights cast to the compute dtype (comfy/ops.py makes a copy of every weight that has a
    LoRA wrapper, and of every weight stored in another dtype, fp8; autograd keeps it for the block's backward)."""
    shape = transformer_shape(net)
    return shape.block_weights * shape.hidden**2 * act_bytes


def check_grpo(model, vae, group_size: int, sample_rows, width: int, height: int, sampling_steps: int,
               free: Free, lora_rank: int = 32, true_cfg: bool = False) -> int:
    """One GRPO step of the group: sampled `sample_rows(group)` at a time, then trained with gradients, every block
    checkpointed, TRAIN_ROWS samples at a time or 1 (gradient accumulation: the same update). On a GPU the
    transformer is loaded whole for training, so its weights count there, at their real bytes (fp8 weights from
    UNETLoader's weight_dtype count 1 byte). The LoRA's training state counts everywhere. Returns the train
    micro-batch that fits; MemoryLimitError (one line naming what would fit) when not even 1 does. `true_cfg`
    (Qwen-Image, SD3.5, Chroma): each trained row is two forwards, the prompt's and the negative's, both kept for
    the backward; sampling runs them one after the other (no gradients: the first's activations are freed), so it
    counts one. Every family's estimate is the same sum over its own sizes (`transformer_shape`): the weights,
    the LoRA state, then the largest of sampling, decoding and training (memory_guard.grpo_need)."""
    sizes = comfy_sizes(model, vae, weight_bytes=0 if free.shared else int(model.model_size()))
    if sizes is None:
        return TRAIN_ROWS  # not a flow transformer: no estimate; an untrainable MODEL is refused by its family
    net = model.model.diffusion_model
    state, cast = lora_train_bytes(net, lora_rank), block_cast_bytes(net, sizes.act_bytes)

    def needs(rows: int, weight_bytes: int = sizes.weight_bytes):
        fitted = dataclasses.replace(sizes, weight_bytes=weight_bytes)

        def need(group: int, h: int, w: int) -> Need:
            return grpo_need(fitted, group=group, sample_rows=sample_rows(group), train_rows=rows * (1 + true_cfg),
                             height=h, width=w, steps=sampling_steps, train_state_bytes=state,
                             block_bytes=cast)  # fmt: skip

        return need

    for rows in dict.fromkeys((TRAIN_ROWS, 1)):
        if free.fits(needs(rows)(group_size, height, width)):
            return rows
    try:
        check_fits("group_size=", group_size, height, width, needs(1), free, sizes.multiple, least=2)
    except MemoryLimitError as exc:
        stored = str(getattr(model.model, "get_dtype", lambda: "")()).removeprefix("torch.")
        halved = sizes.weight_bytes * 1 // max(1, DTYPE_BYTES.get(stored, 2))
        if stored not in FP8 and sizes.weight_bytes and free.fits(needs(1, halved)(group_size, height, width)):
            raise MemoryLimitError(f"{exc}; with the MODEL's weights in fp8 (UNETLoader weight_dtype fp8_e4m3fn) "
                                   "it would fit") from None
        raise
    return 1
