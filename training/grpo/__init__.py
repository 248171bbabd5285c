"""Spatial GRPO: online RL of a LoRA on a flow-matching generator (FLUX.1, Qwen-Image) against SpatialScore
(Flow-GRPO with top-k/bottom-k filtering).

    python -m training.grpo --preset tiny --steps 4 --out runs/tiny

Modules, one idea each:
- the run: trainer (one step top to bottom), config and validation (fields, TOML, presets in configs/; every check
  before a model loads), guards (output folder, resume, non-finite values), checkpoint, reports (metrics, curve,
  grids), prompts, eval_step (a run's eval step and its before/after grid);
- the algorithm: sde (the SDE / CPS step with log-probs), sampling (trajectories; and pictures of a prompt list
  from a generator folder at noise 0, which the sample command, best-of-N and the evaluations draw), advantages
  (group advantages, top-k filter), loss (clipped ratio + KL), ema;
- the generator: policy (the interface the trainer drives), flux_policy and qwen_image_policy (diffusers
  pipelines), lora (attach / export), weight_storage (fp8 base weights), sharding (FSDP of the base weights),
  tiny (the @tiny test models), shapes_generator (the shipped shapes generator's architecture), shipped (the
  shipped generators and LoRAs by name; their files are in assets/);
- judging generators: oracle_judge (the shapes world's pixel oracle), evaluate/ (a generator with and without
  LoRAs on prompt sets, judged by SpatialScore; also the oracle rates of `sample_eval`);
- cli/ (the command lines), recipes/ (what rebuilds the shipped shapes generator and its GRPO LoRA).
"""

from .advantages import group_advantages
from .config import ConfigError, GRPOConfig, load_config
from .sde import cps_step, sde_step

__all__ = ["ConfigError", "GRPOConfig", "cps_step", "group_advantages", "load_config", "sde_step"]
