"""Tiny Qwen2.5-VL models and tokenizers built in code, offline and deterministically.

They have the real architecture (Qwen2_5_VLForConditionalGeneration, a byte-level BPE Qwen2 tokenizer, the
Qwen2-VL image processor), so tests, benchmarks and the shapes world exercise the same loading and scoring code
as the 7B. Nothing here touches the network. The tokenizer and config are ../../common/tiny_qwen.py's.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ...common.tiny_qwen import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_tokenizer, tiny_qwen25vl_config


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
