"""A new scorer's grown vocabulary rows are a function of the base model only, not of torch's global RNG, so
two identical training runs export identical files (the untied lm_head's reward-token row differed)."""

from __future__ import annotations

import torch

from training.reward.config import ScorerConfig
from training.reward.models.loading import create_model


def _grown_rows(tiny_base, seed):
    torch.manual_seed(seed)  # whatever ran before: an earlier model, a data loader
    model = create_model(tiny_base, ScorerConfig(weights="full", lora=None), seed=0)
    vlm = model.vlm
    n = len(model.processor.tokenizer)
    return (vlm.get_input_embeddings().weight[:n].detach().clone(),
            vlm.get_output_embeddings().weight[:n].detach().clone())


def test_grown_embedding_and_lm_head_rows_do_not_depend_on_the_global_rng(tiny_base):
    a_in, a_out = _grown_rows(tiny_base, 1)
    b_in, b_out = _grown_rows(tiny_base, 2)
    assert torch.equal(a_in, b_in)
    assert torch.equal(a_out, b_out)
