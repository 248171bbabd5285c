"""The one-row reward-token override computes what peft's whole-matrix forward computes (output and gradient)."""

from __future__ import annotations

import torch


def test_one_row_override_matches_peft_forward_and_gradient():
    from peft import LoraConfig, get_peft_model
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    from training.reward.models.token_row import use_one_row_override

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = torch.nn.Embedding(50, 8)
            self.proj = torch.nn.Linear(8, 8)

        def forward(self, ids):
            return self.proj(self.embed_tokens(ids))

    torch.manual_seed(0)
    model = get_peft_model(Tiny(), LoraConfig(r=2, target_modules=["proj"],
                                              trainable_token_indices={"embed_tokens": [7, 11]}))
    layer = next(m for m in model.modules() if isinstance(m, TrainableTokensLayer))
    with torch.no_grad():
        layer.trainable_tokens_delta["default"].normal_()
    keys_before = set(model.state_dict())
    ids = torch.tensor([[1, 7, 3, 11, 7], [11, 2, 2, 9, 0]])
    results = []
    for override in (False, True):
        if override:
            assert use_one_row_override(model) == 1
        model.zero_grad(set_to_none=True)
        out = model(ids)
        out.square().sum().backward()
        results.append((out.detach(), layer.trainable_tokens_delta["default"].grad.clone()))
    (out_peft, grad_peft), (out_row, grad_row) = results
    assert torch.allclose(out_peft, out_row, atol=1e-6)
    assert torch.allclose(grad_peft, grad_row, atol=1e-6) and grad_row.abs().sum() > 0
    assert type(layer).__name__ == "OneRowTokensLayer"
    assert set(model.state_dict()) == keys_before  # names unchanged: the adapter file is peft's own
