"""SpatialScore: a Qwen2.5-VL whose final hidden state at a reward token feeds a Gaussian reward head.

The same class serves inference (Scorer), training (training.reward.train) and every model size; zero-shot
mode reuses the plain VLM's language-model head instead of a trained one.
"""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from .config import ScorerConfig, Template
from .head import RewardHead

_PROMPT_SLOT = "\x00SPATIALSCORE_PROMPT\x00"


def text_decoder_layers(vlm: nn.Module):
    """The Qwen2.5-VL language model (Qwen2_5_VLModel), seen through a peft wrapper if there is one."""
    base = vlm.get_base_model() if hasattr(vlm, "get_base_model") else vlm
    return base.model


class ChatFormatter:
    """Renders the chat template once per scorer, then fills prompts in by string replacement.

    Jinja rendering per image costs more than the tiny model's forward pass; the rendered template does not
    depend on the prompt, so it is cached with a placeholder.
    """

    def __init__(self, processor, template: Template, suffix: str):
        messages = [
            {"role": "system", "content": template.system},
            {"role": "user", "content": [{"type": "image"},
                                         {"type": "text", "text": template.user.replace("{prompt}", _PROMPT_SLOT)}]},
        ]
        rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if rendered.count(_PROMPT_SLOT) != 1:
            raise ValueError("the chat template altered the prompt placeholder; cannot format prompts")
        self.head, self.tail = rendered.split(_PROMPT_SLOT)
        self.tail += suffix

    def __call__(self, prompt: str) -> str:
        return self.head + prompt + self.tail


class SpatialScoreModel(nn.Module):
    """mode "reward": head on the reward token; mode "zero-shot": log P(Yes) - log P(No) from the LM head."""

    def __init__(self, vlm: nn.Module, processor, config: ScorerConfig, mode: str = "reward",
                 head: RewardHead | None = None):
        super().__init__()
        if mode not in ("reward", "zero-shot"):
            raise ValueError(f"mode must be 'reward' or 'zero-shot', got {mode!r}")
        self.vlm = vlm
        self.processor = processor
        self.config = config
        self.mode = mode
        tokenizer = processor.tokenizer
        if mode == "reward":
            self.reward_token_id = tokenizer.convert_tokens_to_ids(config.reward_token)
            if self.reward_token_id is None or self.reward_token_id == tokenizer.unk_token_id:
                raise ValueError(f"tokenizer has no reward token {config.reward_token!r}")
            hidden = vlm.config.text_config.hidden_size if hasattr(vlm.config, "text_config") else \
                vlm.get_base_model().config.text_config.hidden_size
            self.head = head if head is not None else RewardHead(hidden, config.head)
            self.format_chat = ChatFormatter(processor, config.template, config.reward_token)
        else:
            self.head = None
            self.yes_id, self.no_id = (_first_token(tokenizer, w) for w in ("Yes", "No"))
            self.format_chat = ChatFormatter(processor, config.template, "")

    # ----- inputs -----
    def encode(self, images: list[Image.Image], prompts: list[str]) -> dict[str, torch.Tensor]:
        """Tokenise prompts and preprocess images into one right-padded batch."""
        texts = [self.format_chat(p) for p in prompts]
        size = {"shortest_edge": self.config.min_pixels, "longest_edge": self.config.max_pixels}
        batch = self.processor(text=texts, images=images, return_tensors="pt", padding=True,
                               padding_side="right", size=size)
        return dict(batch)

    # ----- forward -----
    def final_hidden(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Last hidden state at the scoring position of each row: [B, H]."""
        inner = text_decoder_layers(self.vlm)
        device = next(inner.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(inner.visual.dtype)
        hidden = inner(**batch, use_cache=False).last_hidden_state
        ids = batch["input_ids"]
        if self.mode == "reward":
            is_token = ids == self.reward_token_id
            if not bool(is_token.any(dim=1).all()):
                raise RuntimeError("a row lost its reward token (truncated input?)")
            # Last occurrence, in case a prompt itself contains the token text.
            pos = ids.shape[1] - 1 - is_token.flip(1).int().argmax(dim=1)
        else:
            pos = batch["attention_mask"].sum(dim=1) - 1  # right padding: last real token
        return hidden[torch.arange(ids.shape[0], device=ids.device), pos]

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) in fp32, each [B]. In zero-shot mode log_std is -inf (std 0)."""
        hidden = self.final_hidden(batch)
        if self.mode == "reward":
            return self.head(hidden)
        lm_head = self.vlm.get_output_embeddings()
        logits = lm_head(hidden).float()
        mean = logits[:, self.yes_id] - logits[:, self.no_id]  # = log P(Yes) - log P(No)
        return mean, torch.full_like(mean, float("-inf"))


def _first_token(tokenizer, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if not ids:
        raise ValueError(f"tokenizer cannot encode {word!r}")
    return ids[0]
