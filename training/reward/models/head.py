"""The reward head: reward-token hidden state -> Gaussian reward (mean, log std), always in fp32.

fp32 because the head is tiny and the Bradley-Terry loss compares small differences of means.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import HeadConfig


class RewardHead(nn.Module):
    def __init__(self, in_features: int, config: HeadConfig):
        super().__init__()
        self.config = config
        if config.hidden_size > 0:
            self.body = nn.Sequential(nn.Linear(in_features, config.hidden_size), nn.SiLU())
            out_in = config.hidden_size
        else:
            self.body = nn.Identity()
            out_in = in_features
        self.out = nn.Linear(out_in, 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=m.in_features**-0.5)
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            # Start near a unit-std Gaussian so the first BT steps see an uncertainty, not a spike.
            self.out.weight[1].mul_(0.01)
            self.out.bias[1].fill_(self.config.init_log_std)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.out(self.body(hidden.float()))
        mean = out[..., 0]
        log_std = out[..., 1].clamp(self.config.min_log_std, self.config.max_log_std)
        return mean, log_std
