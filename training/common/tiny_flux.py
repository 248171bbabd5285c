"""A tiny random FluxPipeline built in code, offline and deterministically.

It has FLUX.1-dev's architecture (CLIP-L-style text encoder + T5 encoder + AutoencoderKL with 16x fewer
channels + FluxTransformer2DModel with guidance embedding), so dataset building and Spatial GRPO run the same
loading, sampling and LoRA code as the 12B model. Its images are noise; the plumbing is what it tests.
Tokenizers are built from word lists (no files, no trainers), so two processes build identical ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .tokenizers import add_merge_chain, bytes_to_unicode

# Whole words the prompts of this project use; anything else still tokenizes (CLIP: by byte, T5: <unk>/chars).
WORDS = (
    "a an the and of to in on is are it its this that with there at by from near "
    "left right above below next between front behind top under inside partly hidden "
    "red green blue yellow white black orange purple pink brown gray "
    "circle square triangle cat dog cup car ball box table chair tree bird book apple "
    "one two three four five six small large big room street park kitchen scene photo"
).split()

# Characters T5's unigram model can always fall back on (so no text is lost to <unk> entirely).
T5_CHARS = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"-()/")

CLIP_MAX_LENGTH = 77
T5_MAX_LENGTH = 512  # as FLUX.1-dev; T5 has relative positions, so any length works


def build_tiny_clip_tokenizer():
    """A deterministic CLIP BPE tokenizer: every byte (bare and word-final), plus merges for WORDS."""
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch + "</w>", len(vocab))
    merges: list[tuple[str, str]] = []
    # Longest words first: BPE applies merges by rank, so "square" must not lose to the merges of "are".
    for word in sorted(WORDS, key=lambda w: (-len(w), w)):
        add_merge_chain(list(word[:-1]) + [word[-1] + "</w>"], vocab, merges)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_MAX_LENGTH)


def build_tiny_t5_tokenizer():
    """A deterministic T5 unigram tokenizer: special tokens, '▁word' pieces, then single characters."""
    from transformers import T5TokenizerFast

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + w, -1.0) for w in WORDS]
    pieces += [(c, -5.0) for c in T5_CHARS]
    pieces += [("▁" + c, -4.0) for c in T5_CHARS]
    return T5TokenizerFast(vocab=pieces, extra_ids=0, model_max_length=T5_MAX_LENGTH)


def build_tiny_flux_pipeline(seed: int = 0):
    """A random tiny `diffusers.FluxPipeline`; the same seed gives the same weights. All modules in eval mode."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    clip_tok = build_tiny_clip_tokenizer()
    t5_tok = build_tiny_t5_tokenizer()
    clip_hidden, t5_hidden = 32, 32
    latent_channels = 4
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=len(clip_tok),
                hidden_size=clip_hidden,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                max_position_embeddings=CLIP_MAX_LENGTH,
                projection_dim=clip_hidden,
                bos_token_id=clip_tok.bos_token_id,
                eos_token_id=clip_tok.eos_token_id,
                pad_token_id=clip_tok.pad_token_id,
            )
        )
        text_encoder_2 = T5EncoderModel(
            T5Config(
                vocab_size=len(t5_tok),
                d_model=t5_hidden,
                d_ff=64,
                d_kv=8,
                num_layers=2,
                num_heads=4,
                relative_attention_num_buckets=8,
                dropout_rate=0.0,
                feed_forward_proj="gated-gelu",
                is_encoder_decoder=False,
                pad_token_id=t5_tok.pad_token_id,
                eos_token_id=t5_tok.eos_token_id,
            )
        )
        # Four blocks, like FLUX's VAE, so pixels -> latents is the real factor 8.
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(8, 16, 16, 16),
            layers_per_block=1,
            latent_channels=latent_channels,
            norm_num_groups=4,
            sample_size=64,
            scaling_factor=0.3611,
            shift_factor=0.1159,
            use_quant_conv=False,
            use_post_quant_conv=False,
            mid_block_add_attention=True,
        )
        # axes_dims_rope must sum to attention_head_dim; in_channels is 4 x latent channels (2x2 packing).
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=4 * latent_channels,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=t5_hidden,
            pooled_projection_dim=clip_hidden,
            guidance_embeds=True,
            axes_dims_rope=(4, 6, 6),
        )
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    for module in (text_encoder, text_encoder_2, vae, transformer):
        module.eval()
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tok,
        text_encoder_2=text_encoder_2,
        tokenizer_2=t5_tok,
        transformer=transformer,
    )


def save_tiny_flux_pipeline(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny FluxPipeline folder loadable with `FluxPipeline.from_pretrained(path, local_files_only=True)`."""
    path = Path(path)
    pipe = build_tiny_flux_pipeline(seed)
    path.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(path, safe_serialization=True)
    return path
