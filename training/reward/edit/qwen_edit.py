"""SpatialReward on Qwen2.5-VL: both images in one chat, the reward token last, a Gaussian head and a box head.

    system, user turn: "Instruction: ... Source image: <image> Edited image: <image> ..." (EditTemplate), then the
    generation prompt and the reward token. The reward token's final hidden state feeds
      - the reward head (RewardHead, as SpatialScore): (mean, log_std), trained with the Gaussian BT loss;
      - the region head: one box (x0, y0, x1, y1 in 0..1, sigmoid) around the edit, trained against the true edit
        region's bounding box (L1: the region-grounding loss).
LoRA as for SpatialScore: adapters on the text decoder's projections, the reward token's embedding row, the heads.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ...common.atomic import atomic_dir
from ...common.os_errors import os_errors_name
from ..config import HEAD_FILE, PROCESSOR_DIR, HeadConfig, LoraSettings, ScorerFolderError
from ..models.head import RewardHead
from ..models.model import text_decoder_layers
from . import CONFIG_FILE
from .config import EditScorerConfig
from .coords_edit import EditOutput
from .two_images import INSTRUCTION_SLOT, interleave, render_edit_chat

REGION_FILE = "region.safetensors"


class QwenEditModel(nn.Module):
    kind = "qwen2_5_vl"
    mode = "reward"

    def __init__(self, vlm, processor, config: EditScorerConfig, head: RewardHead | None = None,
                 region: nn.Linear | None = None):
        super().__init__()
        self.vlm, self.processor, self.config = vlm, processor, config
        tok = processor.tokenizer
        self.reward_token_id = tok.convert_tokens_to_ids(config.reward_token)
        if self.reward_token_id is None or self.reward_token_id == tok.unk_token_id:
            raise ValueError(f"tokenizer has no reward token {config.reward_token!r}")
        hidden = text_decoder_layers(vlm).config.text_config.hidden_size
        self.head = head if head is not None else RewardHead(hidden, config.head)
        self.region = region if region is not None else nn.Linear(hidden, 4)
        self.chat, self.order = render_edit_chat(processor, config.template, config.reward_token)
        self.source = ""

    def encode(self, sources, edited, instructions) -> dict:
        if not len(sources) == len(edited) == len(instructions):
            raise ValueError(f"got {len(sources)} sources, {len(edited)} edited images and {len(instructions)} "
                             "instructions; expected one of each per edit")
        texts = [self.chat.replace(INSTRUCTION_SLOT, t) for t in instructions]
        size = {"shortest_edge": self.config.min_pixels, "longest_edge": self.config.max_pixels}
        return dict(self.processor(text=texts, images=interleave(self.order, sources, edited), return_tensors="pt",
                                   padding=True, padding_side="right", size=size))

    def forward(self, batch: dict, probe_layer: int = 0) -> EditOutput:
        inner = text_decoder_layers(self.vlm)
        device = next(inner.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        batch["pixel_values"] = batch["pixel_values"].to(inner.visual.dtype)
        hidden = inner(**batch, use_cache=False).last_hidden_state
        ids = batch["input_ids"]
        is_token = ids == self.reward_token_id
        if not bool(is_token.any(dim=1).all()):
            raise RuntimeError("a row lost its reward token (truncated input?)")
        pos = ids.shape[1] - 1 - is_token.flip(1).int().argmax(dim=1)
        h = hidden[torch.arange(ids.shape[0], device=ids.device), pos].float()
        mean, log_std = self.head(h.to(self.head.out.weight.dtype))
        return EditOutput(mean, log_std, self.region.to(h.dtype)(h))

    def region_loss(self, out: EditOutput, regions: list) -> torch.Tensor:
        """L1 between the predicted box and the bounding box of each edit's true region (edits with one)."""
        rows = [i for i, r in enumerate(regions) if r]
        if not rows:
            return out.region_logits.sum() * 0
        target = torch.tensor([[min(b[0] for b in regions[i]), min(b[1] for b in regions[i]),
                                max(b[2] for b in regions[i]), max(b[3] for b in regions[i])] for i in rows],
                              device=out.region_logits.device)
        return (torch.sigmoid(out.region_logits[rows].float()) - target).abs().mean()

    def predict_regions(self, out: EditOutput) -> list[list[list[float]]]:
        boxes = torch.sigmoid(out.region_logits.detach().float()).cpu()
        result = []
        for x0, y0, x1, y1 in boxes.tolist():
            result.append([[min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]])
        return result


def _base_path(config) -> Path:
    from ..train.train_config import TINY
    from ..train.trainable import build_tiny_base

    return build_tiny_base(config) if config.model.base == TINY else Path(config.model.base)


def create_qwen_edit_model(train_config, seed: int | None = None) -> QwenEditModel:
    """A fresh, trainable edit model on a local Qwen2.5-VL base (model.base, or @tiny): reward token, heads, LoRA."""
    from ..models.loading import add_reward_token, folder_kind, load_processor, load_vlm, lora_target_regex

    m = train_config.model
    base = _base_path(train_config)
    if not base.is_dir() or folder_kind(base) != "base":
        raise ScorerFolderError(f"model.base {base}: expected a local Qwen2.5-VL folder (config.json of model_type "
                                "qwen2_5_vl)")
    lo = train_config.lora
    config = EditScorerConfig(kind="qwen2_5_vl", base_model=str(base.resolve()), weights=m.weights,
                              head=HeadConfig(hidden_size=train_config.head.hidden_size,
                                              init_log_std=train_config.head.init_log_std),
                              lora=LoraSettings(lo.rank, lo.alpha, lo.dropout, list(lo.targets)) if m.weights == "lora"
                              else None, min_pixels=m.min_pixels, max_pixels=m.max_pixels)
    vlm = load_vlm(base, torch.float32, m.attn)
    processor = load_processor(base, config)
    token_id = add_reward_token(vlm, processor, config.reward_token)
    if config.weights == "lora":
        from peft import LoraConfig, get_peft_model

        vlm = get_peft_model(vlm, LoraConfig(r=lo.rank, lora_alpha=lo.alpha, lora_dropout=lo.dropout,
                                             target_modules=lora_target_regex(lo.targets),
                                             trainable_token_indices={"embed_tokens": [token_id]}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(train_config.train.seed if seed is None else seed)
        model = QwenEditModel(vlm, processor, config)
    model.source = str(base)
    return model


def save_qwen_edit(model: QwenEditModel, folder) -> Path:
    from ..models.loading import save_tensors, save_vlm_parts

    folder = Path(folder)
    with os_errors_name(folder), atomic_dir(folder) as tmp:  # a full disk: one line naming the folder
        save_vlm_parts(model, tmp)
        save_tensors(model.head, tmp / HEAD_FILE, "edit scorer weights")
        save_tensors(model.region, tmp / REGION_FILE, "edit scorer weights")
        model.config.write(tmp)
    return folder


def load_qwen_edit(path: Path, config: EditScorerConfig, dtype=None, device=None) -> QwenEditModel:
    from ..models.loading import default_dtype, load_processor, load_vlm_weights, read_weights

    dtype = dtype or default_dtype(torch.device(device or "cpu"))
    for needed in (HEAD_FILE, REGION_FILE, PROCESSOR_DIR):
        if not (path / needed).exists():
            raise ScorerFolderError(f"edit scorer folder {path} is missing {needed}")
    processor = load_processor(path / PROCESSOR_DIR, config)
    vlm = load_vlm_weights(path, config, processor, dtype, what="edit scorer", config_file=CONFIG_FILE)
    model = QwenEditModel(vlm, processor, config)
    model.head.load_state_dict(read_weights(path / HEAD_FILE))
    model.region.load_state_dict(read_weights(path / REGION_FILE))
    return model
