"""Spatial GRPO: online RL of a Flux LoRA against SpatialScore (Flow-GRPO with top-k/bottom-k filtering).

    python -m training.grpo --preset tiny --steps 4 --out runs/tiny

Modules, one idea each: config (fields, TOML, validation), sde (the SDE/CPS step with log-probs), advantages
(group advantages, top-k filter), policy (the interface the trainer drives) and flux_policy (diffusers Flux),
lora (attach / export), sampling (trajectories), loss (clipped ratio + KL), checkpoint, reports (metrics, plots),
prompts, trainer.
"""

from .advantages import group_advantages
from .config import ConfigError, GRPOConfig, load_config
from .sde import cps_step, sde_step

__all__ = ["ConfigError", "GRPOConfig", "cps_step", "group_advantages", "load_config", "sde_step"]
