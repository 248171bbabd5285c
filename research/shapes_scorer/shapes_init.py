"""The initial shapes scorer: a LoRA SpatialScore (the 7B's path) on the pretrained tiny base.

The scorer's chat is the pretraining chat with the reward token where the query token "Answer" was. The reward
token's trainable embedding row starts as "Answer"'s row and the linear head's mean output starts as the LM
head's Yes-minus-No direction, so before reward training the scorer's mean is the base's log-odds that every
relation holds. `python -m training.reward train --init-from` then trains it with the Bradley-Terry loss (only the
LoRA adapters, that row and the head learn; the base stays frozen).
"""

from __future__ import annotations

from pathlib import Path

import torch

from training.reward.config import HeadConfig, LoraSettings, ScorerConfig
from training.reward.models.loading import create_model, save_model

from .shapes_data import QUERY, SHAPES_TEMPLATE


def make_initial_scorer(base: Path, out: Path, rank: int = 8, pixels: int = 112) -> Path:
    px = pixels * pixels
    config = ScorerConfig(weights="lora", lora=LoraSettings(rank=rank, alpha=2 * rank, dropout=0.0),
                          head=HeadConfig(hidden_size=0), template=SHAPES_TEMPLATE, min_pixels=px, max_pixels=px)
    model = create_model(base, config, seed=0)
    tok = model.processor.tokenizer
    query_id, yes_id, no_id = (tok.encode(w)[0] for w in (QUERY, "Yes", "No"))
    vlm = model.vlm.get_base_model()
    with torch.no_grad():
        adapter = vlm.get_input_embeddings().token_adapter
        adapter.trainable_tokens_delta["default"][0].copy_(adapter.base_layer.weight[query_id])
        lm = vlm.get_output_embeddings().weight
        model.head.out.weight.zero_()
        model.head.out.weight[0].copy_(lm[yes_id] - lm[no_id])
        model.head.out.bias.zero_()
    return save_model(model, out)
