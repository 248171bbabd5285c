"""Evaluation during a GRPO run: fixed-noise samples of the eval prompts, their reward, the oracle, the grids.

Every eval step samples the eval prompts from the same noise (seeded by the prompt's index, noise level
`sample.eval_noise_level`, 0 = the ODE), scores them with the run's reward model (`eval_reward_mean`) and, when
`output.oracle` names one, judges them by that oracle (`oracle_objects_ok`, `oracle_relation_ok`, `oracle_all_ok`,
overall and per object count; oracle_judge.py). The oracle only reports: it is never part of the reward. At the end
of a run, `save_before_after` draws the same prompts and noise with the LoRA switched off and on.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config import GRPOConfig
from .oracle_judge import oracle_figures, oracle_verdicts
from .policy import FlowPolicy
from .reports import save_comparison_grid, save_sample_grid
from .sampling import sample_generators, sample_trajectories

GRID_PROMPTS = 8  # eval prompts shown in the step grids (spread over the list)


@torch.no_grad()
def eval_images(policy: FlowPolicy, prompts: list[str], config: GRPOConfig) -> torch.Tensor:
    """[N, H, W, 3] images of `prompts` from their fixed eval noise, in sampling micro-batches."""
    s = config.sample
    sigmas = policy.sigmas(s.num_steps, s.height, s.width)
    images = []
    for first in range(0, len(prompts), s.batch_size):
        chunk = prompts[first:first + s.batch_size]
        trajectories = sample_trajectories(
            policy, policy.encode_prompts(chunk), sample_generators(config.train.seed, 0, range(first, first + len(chunk)),
                                                                    stream="eval"),
            sigmas, [s.eval_noise_level] * s.num_steps, guidance=s.guidance, height=s.height, width=s.width,
            sde_type=s.sde_type,
        )  # fmt: skip
        images.append(policy.decode(trajectories.latents[:, -1]))
    return torch.cat(images)


def grid_indices(n: int, k: int = GRID_PROMPTS) -> list[int]:
    return sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(min(k, n))})


def evaluate(policy: FlowPolicy, score, prompts: list[str], config: GRPOConfig, step: int, out: Path) -> dict:
    """The eval record fields for this step; also writes samples/step_N.png. `score(images, prompts)` -> [N]."""
    images = eval_images(policy, prompts, config)
    scores = score(images, prompts)
    record = {"eval_reward_mean": float(scores.mean())}
    if config.output.oracle:
        record.update(oracle_figures(oracle_verdicts(images, prompts)))
    picks = grid_indices(len(prompts))
    title = f"step {step}  eval reward {scores.mean():+.4f}"
    if "oracle_all_ok" in record:
        title += f"  oracle all relations {100 * record['oracle_all_ok']:.1f}%"
    save_sample_grid(images[picks], [prompts[i] for i in picks], scores[picks].tolist(),
                     out / "samples" / f"step_{step:06d}.png", title=title)  # fmt: skip
    return record


def save_before_after(policy: FlowPolicy, prompts: list[str], config: GRPOConfig, path: Path) -> Path:
    """Two rows, the same prompts and noise: the base model (LoRA off) above, the trained LoRA below."""
    picks = [prompts[i] for i in grid_indices(len(prompts))]
    with policy.reference():
        before = eval_images(policy, picks, config)
    after = eval_images(policy, picks, config)
    rows = [("before GRPO (LoRA off)", before), ("after GRPO", after)]
    if config.output.oracle:
        verdicts = {name: oracle_verdicts(imgs, picks) for name, imgs in rows}
        marks = {name: [all(v["relations"]) for v in verdicts[name]] for name, _ in rows}
    else:
        marks = None
    return save_comparison_grid(rows, picks, path, marks=marks)
