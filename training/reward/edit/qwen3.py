"""Qwen3-VL for the generative judge: its processor without the video half, and a tiny random one for tests.

transformers' Qwen3VLProcessor, like Qwen2.5-VL's, type-checks a video processor that needs torchvision; judging
never sees video, so this subclass takes the image processor, tokenizer and chat template only, and reloads the
same way. `save_tiny_qwen3vl` writes a toy-size Qwen3-VL chat model folder (random weights, built offline).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor


class Qwen3Processor(Qwen3VLProcessor):
    attributes = ["image_processor", "tokenizer"]

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                         chat_template=chat_template, **kwargs)


def tiny_qwen3vl_config(vocab_size: int, token_ids: dict[str, int], text_hidden: int = 64, layers: int = 2):
    from transformers import Qwen3VLConfig

    heads = 4
    head_dim = text_hidden // heads
    half = head_dim // 2
    t = half // 4
    w = (half - t) // 2
    return Qwen3VLConfig(
        text_config={"vocab_size": vocab_size, "hidden_size": text_hidden, "intermediate_size": 2 * text_hidden,
                     "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": 2,
                     "head_dim": head_dim, "max_position_embeddings": 4096,
                     "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                         "mrope_section": [t, half - t - w, w], "mrope_interleaved": True},
                     "pad_token_id": token_ids["<|endoftext|>"]},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 16,
                       "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": text_hidden,
                       "num_position_embeddings": 64, "deepstack_visual_indexes": [0]},
        image_token_id=token_ids["<|image_pad|>"], video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"], vision_end_token_id=token_ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )


def save_tiny_qwen3vl(path: str | os.PathLike, seed: int = 0, pixels: int = 64) -> Path:
    """A toy Qwen3-VL chat model folder (config, safetensors weights, tokenizer, processor), random weights."""
    from transformers import Qwen3VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from ..models.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    token_ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = tiny_qwen3vl_config(len(tokenizer), token_ids)
    config.text_config.eos_token_id = token_ids["<|im_end|>"]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3VLForConditionalGeneration(config).eval()
    image_processor = Qwen2VLImageProcessorPil(patch_size=16, merge_size=2, temporal_patch_size=2,
                                               min_pixels=pixels * pixels, max_pixels=pixels * pixels)
    processor = Qwen3Processor(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
