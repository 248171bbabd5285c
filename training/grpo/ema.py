"""An exponential moving average of the LoRA weights, for evaluation and export (an option, as in Flow-GRPO).

The policy that samples and trains is always the live LoRA; the EMA is a shadow copy updated after every optimizer
step (shadow <- decay * shadow + (1 - decay) * live). Evaluation grids, the oracle figures and the exported
lora.safetensors use the shadow when it is enabled, because single GRPO updates are noisy and the average is the
better model to ship; checkpoints keep both, so a resumed run continues the same average.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from safetensors.torch import load_file


class LoraEMA:
    """`warmup`: the decay of optimizer update n (from 0) is min(decay, (1 + n) / (10 + n)), Flow-GRPO's
    EMAModuleWrapper.get_current_decay: without it the average of a short run stays near the initial LoRA (at decay
    0.9 the shadow after 10 updates of a steady drift is where the live LoRA was after about 4)."""

    def __init__(self, params: dict[str, torch.nn.Parameter], decay: float, warmup: bool = False):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.shadow = {n: p.detach().float().clone() for n, p in params.items()}

    def decay_at(self, update: int) -> float:
        return min(self.decay, (1 + update) / (10 + update)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, params: dict[str, torch.nn.Parameter], update: int = 0) -> None:
        """Fold in the live weights after optimizer update number `update` (counted from 0 over the whole run)."""
        decay = self.decay_at(update)
        for name, p in params.items():
            self.shadow[name].lerp_(p.detach().float(), 1.0 - decay)

    def swapped_in(self, params: dict[str, torch.nn.Parameter]):
        """Inside: the parameters hold the average; afterwards the live weights are back, bit for bit."""
        return swapped_weights(params, self.shadow)

    def load(self, file: Path) -> None:
        saved = load_file(str(file))
        if set(saved) != set(self.shadow):
            raise ValueError(f"{file}: EMA tensors do not match the LoRA")
        self.shadow = {n: t.float() for n, t in saved.items()}


def maybe_swapped_in(ema: LoraEMA | None, params: dict[str, torch.nn.Parameter]):
    return ema.swapped_in(params) if ema is not None else contextlib.nullcontext()


@contextlib.contextmanager
def swapped_weights(params: dict[str, torch.nn.Parameter], weights: dict[str, torch.Tensor]):
    """Inside: each parameter holds `weights[name]`; afterwards the live values are back, bit for bit."""
    live = {n: p.detach().clone() for n, p in params.items()}
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name])
    try:
        yield
    finally:
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(live[name])
