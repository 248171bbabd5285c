"""SpatialScore: a Qwen2.5-VL whose final hidden state at a reward token feeds a Gaussian reward head.

The same class serves inference (Scorer), training (training.reward.train) and every model size; zero-shot
mode reuses the plain VLM's language-model head instead of a trained one.
"""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from ..config import ScorerConfig, Template
from .head import RewardHead
from .rope import prefix_positions, suffix_positions

_PROMPT_SLOT = "\x00SPATIALSCORE_PROMPT\x00"


def text_decoder_layers(vlm: nn.Module):
    """The Qwen2.5-VL language model (Qwen2_5_VLModel), seen through a peft wrapper if there is one."""
    base = vlm.get_base_model() if hasattr(vlm, "get_base_model") else vlm
    return base.model


class ChatFormatter:
    """Renders the chat template once per scorer, then fills prompts in by string replacement.

    Jinja rendering per image costs more than a tiny model's forward pass; the rendered template does not
    depend on the prompt, so it is cached with a placeholder. `split` cuts the chat at the image: the part
    before it (system, header, and the prompt when the template puts it first) is shared by every image
    scored against the same prompt.
    """

    def __init__(self, processor, template: Template, suffix: str):
        messages = [
            {"role": "system", "content": template.system},
            {"role": "user", "content": template.user_content(_PROMPT_SLOT)},
        ]
        rendered = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + suffix
        image_token = processor.image_token
        if rendered.count(_PROMPT_SLOT) != 1 or rendered.count(image_token) != 1:
            raise ValueError("the chat template must render the prompt and the image exactly once")
        cut = rendered.index(image_token)
        self.before, self.after = rendered[:cut], rendered[cut:]

    def __call__(self, prompt: str) -> str:
        return "".join(self.split(prompt))

    def split(self, prompt: str) -> tuple[str, str]:
        """(text before the image, text from the image on) with the prompt filled in."""
        return self.before.replace(_PROMPT_SLOT, prompt), self.after.replace(_PROMPT_SLOT, prompt)


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
        return self._gather_scoring_position(hidden, batch["input_ids"], batch["attention_mask"])

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) in fp32, each [B]. In zero-shot mode log_std is -inf (std 0)."""
        return self.from_hidden(self.final_hidden(batch))

    @torch.inference_mode()
    def score_shared_prefix(self, images: list[Image.Image], prompts: list[str]
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Same result as forward(encode(...)), computing the text before the image once per distinct prompt.

        The prefixes of the distinct prompts run as one left-padded batch; their keys and values are then
        gathered to every row, and only the image and the text after it run per image. Each row's positions
        continue from its own prefix length (rope.py), so M-RoPE sees exactly what the one-pass forward sees.
        """
        inner = text_decoder_layers(self.vlm)
        device = next(inner.parameters()).device
        tok = self.processor.tokenizer
        parts = [self.format_chat.split(p) for p in prompts]
        distinct = sorted({before for before, _ in parts})
        row_to_prefix = torch.tensor([distinct.index(before) for before, _ in parts], device=device)
        pre = tok(distinct, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
        size = {"shortest_edge": self.config.min_pixels, "longest_edge": self.config.max_pixels}
        suf = self.processor(text=[after for _, after in parts], images=images, return_tensors="pt",
                             padding=True, padding_side="right", size=size)
        pre_ids, pre_mask = pre["input_ids"].to(device), pre["attention_mask"].to(device)
        suf = {k: v.to(device) for k, v in suf.items()}
        mask = torch.cat([pre_mask[row_to_prefix], suf["attention_mask"]], dim=1)
        merge = inner.config.vision_config.spatial_merge_size
        after_pos = suffix_positions(pre_mask.sum(1)[row_to_prefix], suf["attention_mask"], suf["image_grid_thw"],
                                     merge)
        cache = inner.language_model(input_ids=pre_ids, attention_mask=pre_mask,
                                     position_ids=prefix_positions(pre_mask), use_cache=True).past_key_values
        cache.batch_select_indices(row_to_prefix)
        hidden = inner(input_ids=suf["input_ids"], attention_mask=mask, position_ids=after_pos,
                       pixel_values=suf["pixel_values"].to(inner.visual.dtype),
                       image_grid_thw=suf["image_grid_thw"], past_key_values=cache, use_cache=True
                       ).last_hidden_state
        return self.from_hidden(self._gather_scoring_position(hidden, suf["input_ids"], suf["attention_mask"]))

    def _gather_scoring_position(self, hidden, ids, mask) -> torch.Tensor:
        if self.mode == "reward":
            is_token = ids == self.reward_token_id
            if not bool(is_token.any(dim=1).all()):
                raise RuntimeError("a row lost its reward token (truncated input?)")
            # Last occurrence, in case a prompt itself contains the token text.
            pos = ids.shape[1] - 1 - is_token.flip(1).int().argmax(dim=1)
        else:
            pos = mask.sum(dim=1) - 1  # right padding: last real token
        return hidden[torch.arange(ids.shape[0], device=ids.device), pos]

    def from_hidden(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
