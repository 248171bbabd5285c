"""The shapes generator's architecture: a small FLUX.1 pipeline, every part a real diffusers/transformers class.

FluxTransformer2DModel, AutoencoderKL, a CLIP text encoder (pooled vector) and a T5 encoder (token sequence), the
project's word-level tokenizers (training/common/tiny_flux.py, built in code) and FlowMatchEulerDiscreteScheduler:
`FluxPipeline.from_pretrained(folder)` loads it like FLUX.1-dev, and GRPO trains it through `FluxPolicy`, the code
path of a FLUX.1-dev run. Sizes are chosen for a 2-core CPU: 64x64 images, a 4x autoencoder (16x16 latents, 8x8 =
64 packed tokens), 40 text tokens.

What differs from FLUX.1-dev, and why:
- no guidance embedding: it is trained from scratch, not guidance-distilled, so it samples with one plain forward;
- a fixed T5 length of `TEXT_LENGTH`: FluxPipeline gives T5 no attention mask, so the padding length changes the
  text features; the model is trained at this length, and `SAMPLING` (also written to the folder) says so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..common.tiny_flux import build_tiny_clip_tokenizer, build_tiny_t5_tokenizer

IMAGE_SIZE = 64
TEXT_LENGTH = 40  # T5 tokens; the longest plain shapes prompt is 34
SAMPLING_FILE = "spatialscore_generator.json"


@dataclass(frozen=True)
class GeneratorShape:
    latent_channels: int = 8
    vae_channels: tuple[int, ...] = (8, 16, 32)  # 3 levels: a 4x autoencoder
    clip_hidden: int = 64
    clip_layers: int = 2
    t5_hidden: int = 128
    t5_layers: int = 3
    heads: int = 4
    head_dim: int = 32
    double_layers: int = 2
    single_layers: int = 3


@dataclass(frozen=True)
class Sampling:
    """The shipped model's own sampling settings (what `training.grpo.sample` uses by default)."""

    num_steps: int = 6  # the paper's GRPO sampling steps; 24 images take under 2 s on one core
    guidance: float = 0.0  # unused: no guidance embedding
    height: int = IMAGE_SIZE
    width: int = IMAGE_SIZE
    max_sequence_length: int = TEXT_LENGTH


def build_autoencoder(shape: GeneratorShape):
    from diffusers import AutoencoderKL

    n = len(shape.vae_channels)
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=shape.vae_channels, layers_per_block=1,
        latent_channels=shape.latent_channels, norm_num_groups=8, sample_size=IMAGE_SIZE, scaling_factor=1.0,
        shift_factor=0.0, use_quant_conv=False, use_post_quant_conv=False, mid_block_add_attention=False,
    )  # fmt: skip


def build_text_encoders(shape: GeneratorShape, clip_tok, t5_tok):
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    clip = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(clip_tok), hidden_size=shape.clip_hidden, intermediate_size=2 * shape.clip_hidden,
        num_hidden_layers=shape.clip_layers, num_attention_heads=2, max_position_embeddings=77,
        projection_dim=shape.clip_hidden, bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id,
        pad_token_id=clip_tok.pad_token_id,
    ))  # fmt: skip
    t5 = T5EncoderModel(T5Config(
        vocab_size=len(t5_tok), d_model=shape.t5_hidden, d_ff=2 * shape.t5_hidden, d_kv=32, num_layers=shape.t5_layers,
        num_heads=shape.t5_hidden // 32, relative_attention_num_buckets=16, relative_attention_max_distance=48,
        dropout_rate=0.0, feed_forward_proj="gated-gelu", is_encoder_decoder=False,
        pad_token_id=t5_tok.pad_token_id, eos_token_id=t5_tok.eos_token_id,
    ))  # fmt: skip
    return clip, t5


def build_transformer(shape: GeneratorShape):
    from diffusers import FluxTransformer2DModel

    third = shape.head_dim // 8
    rope = (shape.head_dim - 6 * third, 3 * third, 3 * third)  # sums to head_dim: (time/text, row, column)
    return FluxTransformer2DModel(
        patch_size=1, in_channels=4 * shape.latent_channels, num_layers=shape.double_layers,
        num_single_layers=shape.single_layers, attention_head_dim=shape.head_dim, num_attention_heads=shape.heads,
        joint_attention_dim=shape.t5_hidden, pooled_projection_dim=shape.clip_hidden, guidance_embeds=False,
        axes_dims_rope=rope,
    )  # fmt: skip


def build_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    # No resolution-dependent shift: the model is trained at one size, on uniform-in-logit sigmas.
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)


def build_pipeline(shape: GeneratorShape = GeneratorShape(), seed: int = 0, vae=None):
    """A freshly initialised shapes generator (all modules in eval mode); `vae` reuses a trained autoencoder."""
    from diffusers import FluxPipeline

    clip_tok, t5_tok = build_tiny_clip_tokenizer(), build_tiny_t5_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder, text_encoder_2 = build_text_encoders(shape, clip_tok, t5_tok)
        transformer = build_transformer(shape)
        vae = vae if vae is not None else build_autoencoder(shape)
    for module in (text_encoder, text_encoder_2, vae, transformer):
        module.eval()
    return FluxPipeline(scheduler=build_scheduler(), vae=vae, text_encoder=text_encoder, tokenizer=clip_tok,
                        text_encoder_2=text_encoder_2, tokenizer_2=t5_tok, transformer=transformer)  # fmt: skip


def read_sampling(folder: str | Path) -> Sampling | None:
    """The sampling settings a generator folder declares (None for a plain FluxPipeline folder, e.g. FLUX.1-dev)."""
    path = Path(folder) / SAMPLING_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return Sampling(**{k: v for k, v in data.get("sampling", {}).items() if k in Sampling.__dataclass_fields__})


def sampling_record(sampling: Sampling, shape: GeneratorShape) -> dict:
    return {"format": "spatialscore-generator", "version": 1, "sampling": asdict(sampling), "shape": asdict(shape)}
