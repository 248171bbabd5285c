"""Tiny Qwen2.5-VL models and tokenizers built in code, offline and deterministically.

They have the real architecture (Qwen2_5_VLForConditionalGeneration, a byte-level BPE Qwen2 tokenizer, the
Qwen2-VL image processor), so tests, benchmarks and the shapes world exercise the same loading and scoring code
as the 7B. Nothing here touches the network.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ...common.tokenizers import add_merge_chain, bytes_to_unicode

# The tokens Qwen2.5-VL's processor and chat template rely on, in the order the real vocabulary has them.
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Whole-word tokens so that prompts tokenize short; any other text still tokenizes, byte by byte.
WORDS = (
    "a an the and of to in on is are it this that image prompt does do show shows hold holds relation relations "
    "spatial described answer yes no Yes No left right above below next between front behind top under inside "
    "partly hidden red green blue yellow circle square triangle object objects scene there judge whether "
    "you system user assistant Is Does Answer The A You expert Judge every placed exactly as with images Prompt "
    "or"
).split()

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_tokenizer():
    """A deterministic byte-level BPE Qwen2 tokenizer with the Qwen2.5-VL special tokens."""
    from transformers import Qwen2Tokenizer

    byte_chars = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for ch in byte_chars:
        vocab.setdefault(ch, len(vocab))
    merges: list[tuple[str, str]] = []
    space = bytes_to_unicode()[ord(" ")]
    # Space-prefixed forms first: BPE applies merges by rank, so their chains must outrank the bare ones.
    by_length = sorted(WORDS, key=len, reverse=True)  # long chains first, so short words cannot split them
    for form in [space + w for w in by_length] + by_length:
        add_merge_chain(form, vocab, merges)
    for tok in SPECIAL_TOKENS:
        vocab[tok] = len(vocab)
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges)
    tok.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_qwen25vl_config(vocab_size: int, token_ids: dict[str, int], *, text_hidden: int = 64, text_layers: int = 2,
                        heads: int = 4, kv_heads: int = 2, vision_hidden: int = 32, vision_depth: int = 2,
                        rope_theta: float = 10000.0):
    """A Qwen2.5-VL config of the real architecture at toy size (head_dim 16, M-RoPE sections summing to 8)."""
    from transformers import Qwen2_5_VLConfig

    head_dim = text_hidden // heads
    half = head_dim // 2
    t = half // 4
    w = (half - t) // 2
    mrope = [t, half - t - w, w]
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": text_hidden,
            "intermediate_size": text_hidden * 2,
            "num_hidden_layers": text_layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
            "rope_parameters": {"rope_type": "default", "rope_theta": rope_theta, "mrope_section": mrope},
            "bos_token_id": token_ids["<|endoftext|>"],
            "eos_token_id": token_ids["<|im_end|>"],
            "pad_token_id": token_ids["<|endoftext|>"],
        },
        vision_config={
            "depth": vision_depth,
            "hidden_size": vision_hidden,
            "intermediate_size": vision_hidden * 2,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "out_hidden_size": text_hidden,
            "fullatt_block_indexes": [vision_depth - 1],
        },
        image_token_id=token_ids["<|image_pad|>"],
        video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"],
        vision_end_token_id=token_ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def build_tiny_qwen25vl(seed: int = 0, *, min_pixels: int = 56 * 56, max_pixels: int = 112 * 112, **config_kwargs):
    """(model, processor) of a random tiny Qwen2.5-VL; the same seed gives the same weights."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from .processor import SpatialProcessor, make_image_processor

    tokenizer = build_tiny_tokenizer()
    token_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = tiny_qwen25vl_config(len(tokenizer), token_ids, **config_kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.eval()
    processor = SpatialProcessor(
        image_processor=make_image_processor(min_pixels=min_pixels, max_pixels=max_pixels),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    return model, processor


def save_tiny_qwen25vl(path: str | os.PathLike, seed: int = 0, **kwargs) -> Path:
    """Write a tiny base VLM folder laid out like a downloaded Qwen2.5-VL checkpoint."""
    path = Path(path)
    model, processor = build_tiny_qwen25vl(seed, **kwargs)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    from ...common.atomic import usual_permissions

    usual_permissions(path)  # save_pretrained's safetensors are 0600 (see common/atomic.py)
    return path


def save_tiny_scorer(path: str | os.PathLike, seed: int = 0, weights: str = "full",
                     base_dir: str | os.PathLike | None = None, head_hidden: int = 32, lora_rank: int = 4,
                     min_pixels: int = 56 * 56, max_pixels: int = 112 * 112, **model_kwargs) -> Path:
    """Write a tiny scorer folder with random weights (mode "reward"): the plumbing of a trained scorer.

    weights="full" stores the whole tiny VLM; weights="lora" needs (or creates) a base folder at `base_dir`
    and stores only the adapter, like a scorer trained on Qwen2.5-VL-7B.
    """
    import tempfile

    from ..config import HeadConfig, LoraSettings, ScorerConfig
    from .loading import create_model, save_model

    config = ScorerConfig(
        weights=weights,
        lora=LoraSettings(rank=lora_rank, alpha=2 * lora_rank) if weights == "lora" else None,
        head=HeadConfig(hidden_size=head_hidden),
        min_pixels=min_pixels,
        max_pixels=max_pixels,
    )
    with tempfile.TemporaryDirectory() as tmp:
        if base_dir is None:
            if weights == "lora":
                raise ValueError("a LoRA scorer needs base_dir: the base model folder it refers to")
            base_dir = Path(tmp) / "base"
        base_dir = Path(base_dir)
        if not (base_dir / "config.json").is_file():
            save_tiny_qwen25vl(base_dir, seed=seed, min_pixels=min_pixels, max_pixels=max_pixels, **model_kwargs)
        model = create_model(base_dir, config, seed=seed)
        if weights == "full":
            model.config.base_model = None  # the folder is self-contained
        return save_model(model, path)
