"""The trainable reward-token row as a one-row override of the frozen embedding lookup.

peft's `TrainableTokensLayer` (trainable_token_indices) builds the whole embedding matrix with the trained rows
written in (`weight.index_copy`) on every forward and looks the tokens up in that copy: on Qwen2.5-VL-7B that is
a 152064 x 3584 bf16 matrix (1.02 GiB) per forward, and its backward materialises a dense gradient of the same
size before keeping one row. `OneRowTokensLayer` looks the tokens up in the frozen matrix as usual and then puts
the trained row in at the positions holding the token: the same output and the same gradient for the row, with
memory proportional to the batch's tokens instead of the vocabulary. The parameters, their names and the saved
adapter stay peft's own, so saving, loading and merging are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


def _trainable_tokens_layer():
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    return TrainableTokensLayer


def _one_row_class():
    base = _trainable_tokens_layer()

    class OneRowTokensLayer(base):
        """peft's TrainableTokensLayer with a row-override forward (same parameters, same state dict)."""

        def forward_adapters(self, x: torch.Tensor, active_adapters, *args, **kwargs) -> torch.Tensor:
            if (self.disable_adapters or not active_adapters or self.merged
                    or not isinstance(self.base_layer, nn.Embedding)):
                return super().forward_adapters(x, active_adapters, *args, **kwargs)
            self._check_overlapping_tokens(active_adapters)
            result = self.base_layer(x, *args, **kwargs)  # the frozen lookup (applies any embed scale itself)
            scale = self._get_embed_scale()
            for adapter in active_adapters:
                rows = self.trainable_tokens_delta[adapter]
                for k, token in enumerate(self.token_indices[adapter]):
                    row = rows[k] if scale is None else rows[k] * scale
                    result = torch.where((x == token).unsqueeze(-1), row.to(result.dtype), result)
            return result

    OneRowTokensLayer.__name__ = OneRowTokensLayer.__qualname__ = "OneRowTokensLayer"
    return OneRowTokensLayer


_CLASS: type | None = None


def use_one_row_override(model: nn.Module) -> int:
    """Switch every peft trainable-token embedding layer in `model` to the one-row forward; returns how many."""
    global _CLASS
    base = _trainable_tokens_layer()
    if _CLASS is None:
        _CLASS = _one_row_class()
    n = 0
    for module in model.modules():
        if isinstance(module, base) and not isinstance(module, _CLASS):
            module.__class__ = _CLASS  # same attributes and parameters: only the forward differs
            n += 1
    return n
