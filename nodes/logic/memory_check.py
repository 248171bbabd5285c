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
FLUX_TEXT_TOKENS = 512  # T5's longest sequence in ComfyUI's Flux text encoder; the conditioning's own length if known


def _dtype_bytes(dtype) -> int:
    return DTYPE_BYTES.get(str(dtype).removeprefix("torch."), 2)


def vae_decode_bytes_per_pixel(vae, act_bytes: int) -> int:
    """One image through the VAE's decoder, per output pixel, from the decoder's own channels: ComfyUI's decoder
    (FLUX.1's VAE from Load VAE) or a diffusers AutoencoderKL behind ComfyUI's VAE (the shapes generator); else
    ComfyUI's own decode estimate."""
    first = getattr(vae, "first_stage_model", None)
    config = getattr(getattr(first, "vae", None), "config", None)
    if config is not None and "block_out_channels" in config:
        return decoder_bytes_per_pixel(diffusers_decoder_widths(list(config.block_out_channels)), act_bytes)
    levels = getattr(getattr(first, "decoder", None), "up", None)
    if levels is not None:  # level i: its blocks' input (upsampled from below) and output channels
        widths = [max(max(block.in_channels, block.out_channels) for block in level.block) for level in levels]
        return decoder_bytes_per_pixel(widths, act_bytes)
    scale, channels = int(vae.downscale_ratio), int(vae.latent_channels)
    return int(vae.memory_used_decode([1, channels, 8, 8], vae.vae_dtype)) // (64 * scale * scale)


def comfy_sizes(model, vae, conditioning=None, weight_bytes: int = 0) -> FlowSizes | None:
    """FlowSizes of a Flux-like MODEL (a transformer with hidden_size and double and single blocks), or None for
    other architectures (UNets). `weight_bytes`: what the weights add to the need (see the module's docstring)."""
    net = model.model.diffusion_model
    hidden = getattr(net, "hidden_size", None)
    blocks = len(getattr(net, "double_blocks", ())) + len(getattr(net, "single_blocks", ()))
    if not hidden or not blocks:
        return None
    act_bytes = _dtype_bytes(getattr(model.model, "manual_cast_dtype", None) or model.model.get_dtype())
    text_tokens, text_width = FLUX_TEXT_TOKENS, int(getattr(getattr(net, "params", None), "context_in_dim", hidden))
    if conditioning:
        _, text_tokens, text_width = conditioning[0][0].shape
    decode = vae_decode_bytes_per_pixel(vae, _dtype_bytes(vae.vae_dtype))
    return FlowSizes(latent_channels=int(vae.latent_channels), vae_scale=int(vae.downscale_ratio),
                     hidden=int(hidden), blocks=blocks, text_tokens=int(text_tokens), text_width=int(text_width),
                     decode_bytes_per_pixel=decode, weight_bytes=weight_bytes, act_bytes=act_bytes,
                     patch=int(getattr(net, "patch_size", 2)))  # fmt: skip


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
    scale, channels = int(vae.downscale_ratio), int(vae.latent_channels)
    decode_per_pixel = vae_decode_bytes_per_pixel(vae, _dtype_bytes(vae.vae_dtype))

    def need(count: int, h: int, w: int) -> Need:
        row = sizes.row_bytes(h, w, 1) if sizes is not None else _unet_row_bytes(model, channels, scale, h, w)
        sampling = count * rows_per_candidate * row
        decoding = decode_per_pixel * h * w + count * channels * (h // scale) * (w // scale) * FLOAT32
        return Need(max(sampling, decoding), 2 * count * image_bytes(h, w))

    check_fits("n=", n, height, width, need, free, 2 * scale)


FP8 = ("float8_e4m3fn", "float8_e5m2")


def lora_train_bytes(net, rank: int) -> int:
    """The LoRA of the default targets (every attention and MLP projection of Flux's blocks, MLP ratio 4) in fp32,
    with its gradients and AdamW's two moments: rank x width x (36 a double block + 17 a single block) parameters
    (FLUX.1-dev at rank 32: 130.7 M, 0.49 GiB, the dry run's figure), 16 bytes each."""
    hidden, double, single = int(net.hidden_size), len(net.double_blocks), len(net.single_blocks)
    return 16 * rank * hidden * (36 * double + 17 * single)


def block_cast_bytes(net, act_bytes: int) -> int:
    """The largest block's weights cast to the compute dtype (comfy/ops.py makes a copy of every weight that has a
    LoRA wrapper; autograd keeps it for the block's backward): a double block holds 36 width^2 weights."""
    return (36 if len(net.double_blocks) else 15) * int(net.hidden_size) ** 2 * act_bytes


def check_grpo(model, vae, group_size: int, sample_rows, width: int, height: int, sampling_steps: int,
               free: Free, lora_rank: int = 32, true_cfg: bool = False) -> int:
    """One GRPO step of the group: sampled `sample_rows(group)` at a time, then trained with gradients, every block
    checkpointed, TRAIN_ROWS samples at a time or 1 (gradient accumulation: the same update). On a GPU the
    transformer is loaded whole for training, so its weights count there, at their real bytes (fp8 weights from
    UNETLoader's weight_dtype count 1 byte). The LoRA's training state counts everywhere. Returns the train
    micro-batch that fits; MemoryLimitError (one line naming what would fit) when not even 1 does. `true_cfg`
    (Chroma; Qwen-Image and SD3.5 have no estimate here): each trained row is two forwards, the prompt's and the
    negative's, both kept for the backward; sampling runs them one after the other."""
    sizes = comfy_sizes(model, vae, weight_bytes=0 if free.shared else int(model.model_size()))
    if sizes is None:
        return TRAIN_ROWS  # not Flux-like (Qwen-Image, SD3.5): no estimate; an untrainable MODEL is refused by its family
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
