"""The text side of a tiny Qwen2.5-VL, built in code, offline and deterministically: its special tokens, a byte-level
BPE Qwen2 tokenizer, the chat template and the model config at toy size. The tiny SpatialScore
(training/reward/models/tiny.py) and the tiny Qwen-Image's text encoder (tiny_qwen_image.py) are built from them.
"""

from __future__ import annotations

from .tokenizers import add_merge_chain, bytes_to_unicode

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
