"""Will a sampling run fit in memory? Estimated before anything large is allocated, so that a count or a size that
cannot fit is refused with one line naming the largest setting that would, instead of the kernel killing the
process (or ComfyUI) tens of gigabytes later.

The estimate uses the model's own sizes (FlowSizes: latent channels, VAE scale, transformer width, tokens,
parameter bytes). The device holds the weights plus the largest of the run's phases:

    sampling   per image row: ACTIVATION_WIDTHS x (image tokens + text tokens) x width x act bytes (transformer)
                            + text tokens x text width x act bytes (conditioning)
                            + (stored steps + LIVE_LATENTS) x latent channels x h x w x 4 (float32 latents)
    decoding   decode bytes per pixel x H x W for each image decoded at once, with the rows' stored latents
    training   per row: (GRAD_WIDTHS_RECOMPUTE + GRAD_WIDTHS_PER_BLOCK x blocks) x tokens x width x act bytes (GRPO)
    encoding   text encoders that live in RAM and visit the GPU only to encode

and RAM holds the decoded images (H x W x 3 x 4 each, kept until the run writes them) and the visiting encoders.
On a CPU both are the same pool (MemAvailable). The estimate is meant to be on the high side: what it refuses would
not have fitted; what it accepts may still be close.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3
MAX_SIDE = 8192  # pixels: beyond it a size is a typo, not a picture (FLUX.1 is trained up to 2 megapixels)
MAX_STEPS = 1000  # sampling steps, as the Best-of-N node's widget (FLUX.1-dev samples in 28 to 50)
# live [tokens, width] tensors of a single Flux block at its peak without gradients: the input and its normalised
# copy, q, k, v and their rotated copies, the 4x-wide MLP state and its activation, the 5x-wide concatenation, the
# output (attention itself is memory-efficient SDPA). Measured: sampling the shapes generator on a CPU (2 steps, all
# rows in one batch, images kept) took 1.09 GB for 1024 rows at 64x64 (30 widths estimate 1.6) and 0.64 GB for 16 at
# 512x512 (1.3); the full-size dry run (docs/memory_plan.md) puts FLUX.1-dev's sampling at 0.19 GiB a 512x512 row
# with 128 text tokens, 28 widths.
ACTIVATION_WIDTHS = 30
# training through the transformer with every block checkpointed keeps GRAD_WIDTHS_PER_BLOCK [tokens, width]
# tensors a block for the backward pass (its input, and the copy comfy/policy.py gives each block), plus one block
# recomputed whole in backward, GRAD_WIDTHS_RECOMPUTE. Dry run of FLUX.1-dev's transformer at 1152 tokens, bf16, with
# its LoRA (full width, 3 and 6 blocks): 50 widths at 3 blocks, about 1 more a block. (An earlier dry run measured
# 25 widths a block: its FLOP counter's module hooks kept the checkpointed activations alive; benchmarks/dryrun/
# measure.py TotalFlops.)
GRAD_WIDTHS_PER_BLOCK = 2
GRAD_WIDTHS_RECOMPUTE = 60
LIVE_LATENTS = 4  # x, the velocity, the predicted x0 and the step's noise, in float32
# widest-level tensors live at once in a VAE decoder: measured 260-300 bytes a pixel for the shapes VAE on a CPU at
# 1024-2048 px, where 6 copies of its 16 full-resolution channels estimate 384
DECODER_COPIES = 6
FLOAT32 = 4


@dataclass(frozen=True)
class FlowSizes:
    """What decides the memory of sampling a FLUX-architecture model, read from its configs or from ComfyUI's
    objects."""

    latent_channels: int  # the VAE's latent channels (FLUX.1: 16)
    vae_scale: int  # pixels per latent cell (FLUX.1: 8)
    hidden: int  # the transformer's width (FLUX.1: 24 heads x 128 = 3072)
    blocks: int  # transformer blocks, double and single (FLUX.1: 19 + 38)
    text_tokens: int  # the T5 sequence length (FLUX.1-dev: 512)
    text_width: int  # the conditioning's width (T5-XXL: 4096)
    decode_bytes_per_pixel: int  # one image through the VAE decoder, per output pixel
    weight_bytes: int  # weights on the device throughout, at the run's dtype (on a CPU: every weight)
    act_bytes: int  # bytes of one activation element (bf16 2, fp32 4)
    patch: int = 2  # latent cells per token side (Flux packs 2x2)
    visiting_bytes: int = 0  # weights kept in RAM that visit the GPU only to encode prompts (the text encoders)

    @property
    def multiple(self) -> int:
        """Image sides must be a multiple of this: whole tokens of whole latent cells."""
        return self.patch * self.vae_scale

    def tokens(self, height: int, width: int) -> int:
        return (height // self.multiple) * (width // self.multiple)

    def latent_bytes(self, height: int, width: int) -> int:
        return self.latent_channels * (height // self.vae_scale) * (width // self.vae_scale) * FLOAT32

    def row_bytes(self, height: int, width: int, stored_latents: int, grad: bool = False) -> int:
        """One image row through the transformer: activations, its conditioning, its latents; with `grad`, what
        training keeps for the backward pass."""
        widths = GRAD_WIDTHS_RECOMPUTE + GRAD_WIDTHS_PER_BLOCK * self.blocks if grad else ACTIVATION_WIDTHS
        sequence = self.tokens(height, width) + self.text_tokens
        return (widths * sequence * self.hidden * self.act_bytes + self.text_tokens * self.text_width * self.act_bytes
                + (stored_latents + LIVE_LATENTS) * self.latent_bytes(height, width))  # fmt: skip

    def decode_bytes(self, height: int, width: int) -> int:
        return self.decode_bytes_per_pixel * height * width


def image_bytes(height: int, width: int) -> int:
    """One float32 IMAGE row [H, W, 3]."""
    return height * width * 3 * FLOAT32


@dataclass(frozen=True)
class Need:
    device: int  # bytes where the model runs
    host: int  # bytes of RAM besides (the same pool as `device` on a CPU)


@dataclass(frozen=True)
class Free:
    device: int
    host: int
    where: str  # "RAM" when the model runs on the CPU, else the device, e.g. "cuda:0"

    @property
    def shared(self) -> bool:
        return self.where == "RAM"

    def shortfall(self, need: Need) -> tuple[int, int, str] | None:
        """(bytes needed, bytes free, where) of the first pool that is short, or None when the run fits."""
        if self.shared:
            total = need.device + need.host
            return (total, self.device, "RAM") if total > self.device else None
        if need.device > self.device:
            return need.device, self.device, self.where
        if need.host > self.host:
            return need.host, self.host, "RAM"
        return None

    def fits(self, need: Need) -> bool:
        return self.shortfall(need) is None


class MemoryLimitError(ValueError):
    """A run that cannot fit in the memory that is free; the message names the largest setting that would."""


def gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def available_ram() -> int:
    """Bytes of RAM the kernel can give without swapping (MemAvailable), not the total."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def free_memory(device) -> Free:
    """What is free now on `device` (a torch.device or name) and in RAM."""
    import torch

    device = torch.device(device)
    host = available_ram()
    if device.type != "cuda":
        return Free(host, host, "RAM")
    free, _ = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # torch's own, reusable
    return Free(int(free + cached), host, str(device))


def largest(fits: Callable[[int], bool], upper: int) -> int:
    """The largest k in 1..upper with fits(k), for a `fits` that turns false as k grows; 0 when even 1 does not."""
    low, high = 0, upper
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def largest_size(fits: Callable[[int, int], bool], height: int, width: int, multiple: int) -> tuple[int, int] | None:
    """The largest (height, width) of the same shape, sides multiples of `multiple`, with fits(h, w); or None."""

    def scaled(k: int) -> tuple[int, int]:  # k multiples tall, the width in proportion
        return k * multiple, max(multiple, round(width * k / height) * multiple)

    k = largest(lambda k: fits(*scaled(k)), max(1, height // multiple))
    return scaled(k) if k else None


def check_side(name: str, value: int, multiple: int, limit: int = MAX_SIDE) -> None:
    """An image side the model takes: a positive multiple of `multiple` up to `limit`; ValueError naming it."""
    if value > limit:
        raise ValueError(f"{name} {value}: at most {limit} pixels a side")
    if value < multiple or value % multiple:
        lower = max(multiple, value // multiple * multiple)
        raise ValueError(f"{name} {value}: expected a multiple of {multiple} (this model's VAE scale "
                         f"{multiple // 2} x Flux's 2x2 patches), e.g. {lower}")  # fmt: skip


def advise(count_name: str, count: int, height: int, width: int, need: Callable[[int, int, int], Need], free: Free,
           multiple: int, least: int = 1) -> str:
    """What fits instead: the largest count (at least `least`) at this size, else the largest size of this shape at
    a count of `least`, else that the weights alone do not fit. `need(count, height, width)`."""
    most = largest(lambda k: free.fits(need(k, height, width)), count)
    if most >= least:
        return f"at most {count_name}{most} fits"
    size = largest_size(lambda h, w: free.fits(need(least, h, w)), height, width, multiple)
    if size is None:
        return "the model does not fit even at its smallest size"
    fits = f"at most {size[1]}x{size[0]} fits"
    if count == least:
        return fits
    return f"not even {count_name}{least} fits at {width}x{height}; {fits} at {count_name}{least}"


def check_fits(count_name: str, count: int, height: int, width: int, need: Callable[[int, int, int], Need],
               free: Free, multiple: int, least: int = 1) -> None:
    """MemoryLimitError, naming the largest setting that fits, when `count` images at height x width do not fit.

    `count_name` is how the user writes the setting, with its separator: "--n " on a command line, "n=" in a node;
    `least` the smallest count the setting allows.
    """
    short = free.shortfall(need(count, height, width))
    if short is not None:
        needed, available, where = short
        advice = advise(count_name, count, height, width, need, free, multiple, least)
        raise MemoryLimitError(f"{count_name}{count} at {width}x{height} needs about {gib(needed)}, "
                               f"{gib(available)} free in {where}: {advice}")


def run_device(name: str | None):
    """The torch.device a run named `name` ("auto": the GPU if there is one) uses; ValueError for a bad name."""
    import torch

    from .device import check_device

    device = check_device(name)
    if device is not None:
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ----- the sizes of a diffusers FluxPipeline folder, read before it loads -----------------------------------------

def _config(folder: Path, part: str) -> dict:
    path = folder / part / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable FluxPipeline config ({exc})") from None


def parameter_count(folder: Path) -> int:
    """Elements of every tensor in the folder's .safetensors files (headers only, nothing is loaded); 0 when the
    folder is absent."""
    import struct

    total = 0
    for path in sorted(folder.rglob("*.safetensors")):
        with open(path, "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        for name, entry in header.items():
            if name != "__metadata__":
                count = 1
                for dim in entry["shape"]:
                    count *= dim
                total += count
    return total


def decoder_bytes_per_pixel(level_widths: list[int], act_bytes: int) -> int:
    """One image through a VAE decoder, per output pixel: level i works at 1/2^i of the size on at most
    level_widths[i] channels."""
    return int(DECODER_COPIES * max(width / 4**i for i, width in enumerate(level_widths)) * act_bytes)


def diffusers_decoder_widths(block_out_channels: list[int]) -> list[int]:
    """A diffusers decoder's widest channels per level, full resolution first: each level also holds the upsampled
    channels of the level below it."""
    last = len(block_out_channels) - 1
    return [max(c, block_out_channels[min(i + 1, last)]) for i, c in enumerate(block_out_channels)]


def flux_folder_sizes(folder: str | os.PathLike, act_bytes: int, text_tokens: int,
                      encoders_visit: bool = False) -> FlowSizes:
    """FlowSizes of a diffusers FluxPipeline folder. `encoders_visit`: the text encoders stay in RAM and visit the
    GPU only to encode (FluxPolicy's offload_text_encoders); else every weight is on the device."""
    folder = Path(folder)
    transformer, vae = _config(folder, "transformer"), _config(folder, "vae")
    try:
        channels = [int(c) for c in vae["block_out_channels"]]
        sizes = _flux_sizes(transformer, vae, channels, act_bytes, text_tokens)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{folder}: its transformer or vae config lacks a FLUX size ({exc!r})") from None
    resident = (parameter_count(folder / "transformer") + parameter_count(folder / "vae")) * act_bytes
    encoders = (parameter_count(folder / "text_encoder") + parameter_count(folder / "text_encoder_2")) * act_bytes
    if encoders_visit:
        return dataclasses.replace(sizes, weight_bytes=resident, visiting_bytes=encoders)
    return dataclasses.replace(sizes, weight_bytes=resident + encoders)


def _flux_sizes(transformer: dict, vae: dict, channels: list[int], act_bytes: int, text_tokens: int) -> FlowSizes:
    return FlowSizes(
        latent_channels=int(vae["latent_channels"]),
        vae_scale=2 ** (len(channels) - 1),
        hidden=int(transformer["num_attention_heads"]) * int(transformer["attention_head_dim"]),
        blocks=int(transformer.get("num_layers", 19)) + int(transformer.get("num_single_layers", 38)),
        text_tokens=int(text_tokens),
        text_width=int(transformer.get("joint_attention_dim", 4096)),
        decode_bytes_per_pixel=decoder_bytes_per_pixel(diffusers_decoder_widths(channels), act_bytes),
        weight_bytes=0,
        act_bytes=act_bytes,
    )


def checked_folder_sizes(folder: str | os.PathLike, device_name: str | None, settings: dict):
    """(the run's torch.device, the folder's FlowSizes at the run's dtype: bf16 on a GPU, where the text encoders
    only visit, fp32 on a CPU), after checking the sampling settings ("height", "width", "num_steps",
    "max_sequence_length", as training.grpo.sampling.settings_for gives them) against what the model takes."""
    device = run_device(device_name)
    gpu = device.type == "cuda"
    sizes = flux_folder_sizes(folder, 2 if gpu else 4, settings["max_sequence_length"], encoders_visit=gpu)
    check_side("--height", settings["height"], sizes.multiple)
    check_side("--width", settings["width"], sizes.multiple)
    if settings["num_steps"] > MAX_STEPS:  # the schedule alone would be an array of that many sigmas
        raise ValueError(f"--num-steps {settings['num_steps']}: at most {MAX_STEPS} sampling steps")
    return device, sizes


def _with_weights(sizes: FlowSizes, phases: list[int], held: int) -> Need:
    """The device holds the weights and the largest phase (or the visiting encoders); RAM the held bytes and the
    visiting encoders between their visits."""
    return Need(sizes.weight_bytes + max(*phases, sizes.visiting_bytes), held + sizes.visiting_bytes)


def sampling_need(sizes: FlowSizes, *, rows: int, height: int, width: int, stored_latents: int, decode_rows: int,
                  held_images: int) -> Need:
    """`rows` images through the transformer at once, each keeping `stored_latents` latents; then `decode_rows` of
    them through the decoder at once; `held_images` decoded images kept in RAM."""
    sampling = rows * sizes.row_bytes(height, width, stored_latents)
    decoding = (min(rows, decode_rows) * sizes.decode_bytes(height, width)
                + rows * stored_latents * sizes.latent_bytes(height, width))  # fmt: skip
    return _with_weights(sizes, [sampling, decoding], held_images * image_bytes(height, width))


def grpo_need(sizes: FlowSizes, *, group: int, sample_rows: int, train_rows: int, height: int, width: int,
              steps: int, train_state_bytes: int = 0, block_bytes: int = 0) -> Need:
    """One GRPO step: the group sampled `sample_rows` at a time (every step's latent kept) and decoded, then
    `train_rows` at a time through the transformer with gradients; the group's latents and images stay in RAM.
    `train_state_bytes` (the LoRA, its gradients and AdamW moments) is held throughout; `block_bytes` (one block's
    weights cast to the compute dtype, kept for its backward) adds to training."""
    sampling = sample_rows * sizes.row_bytes(height, width, steps + 1)
    decoding = sizes.decode_bytes(height, width) + sample_rows * (steps + 1) * sizes.latent_bytes(height, width)
    training = train_rows * sizes.row_bytes(height, width, 2, grad=True) + block_bytes
    held = group * ((steps + 1) * sizes.latent_bytes(height, width) + image_bytes(height, width))
    need = _with_weights(sizes, [sampling, decoding, training], held)
    return Need(need.device + train_state_bytes, need.host) if train_state_bytes else need
