"""Pruned best-of-N on a FLUX pipeline (a FluxPolicy): one prompt's N candidates sampled as one shrinking batch.

Sampling is the project's one implementation (training/grpo: FluxPolicy velocity, the SDE step at noise 0 =
FluxPipeline's Euler ODE). Prompt p's candidates are
`training.grpo.sampling.generate([prompt] * N, seed=prompt_seed(seed, p))`: noise of candidate i comes from (that
seed, i), so the first 8 of 16 candidates are the 8 of best-of-8, and `--prune none` equals plain sampling followed
by reranking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .pruning import Pruner
from .schedule import Stage


def prompt_seed(seed: int, index: int) -> int:
    """The sampling seed of the index-th prompt of a run."""
    from training.grpo.sampling import sample_seed

    return sample_seed(seed, index, 0, stream="bestofn")


@dataclass
class Counters:
    transformer_forwards: int = 0
    decodes: int = 0
    scores: int = 0

    def add(self, other: Counters) -> None:
        self.transformer_forwards += other.transformer_forwards
        self.decodes += other.decodes
        self.scores += other.scores


@dataclass
class PromptResult:
    images: torch.Tensor  # [K, H, W, 3] in 0..1, best first
    latents: torch.Tensor  # [K, C, h, w] final latents, same order
    kept: list[dict]  # {"candidate", "rank", "score"}, best first
    pruner: Pruner
    counters: Counters = field(default_factory=Counters)


ScoreFn = Callable[[torch.Tensor, list[str]], torch.Tensor]  # images [B,H,W,3], prompts -> means [B]


@torch.no_grad()
def best_of_n(policy, prompt: str, n: int, keep: int, stages: list[Stage], settings: dict, seed: int,
              score: ScoreFn, trace: bool = False, cancelled: Callable[[], None] | None = None) -> PromptResult:
    """Sample N candidates of `prompt`, prune at `stages` on x0 scores, return the top `keep` by final score.

    `trace` also scores every step's x0 (for the rank-correlation measurement; it costs decodes and scores).
    """
    from training.grpo.sampling import sample_generators
    from training.grpo.sde import sde_step

    steps = settings["num_steps"]
    sigmas = policy.sigmas(steps, settings["height"], settings["width"])
    generators = sample_generators(seed, 0, range(n), stream="eval")  # generate()'s noise for (seed, 0..N-1)
    x = policy.initial_noise(generators, settings["height"], settings["width"])
    pruner, counters = Pruner(n, stages, steps), Counters()
    for j in range(steps):
        if cancelled is not None:
            cancelled()
        sigma = sigmas[j].item()
        embeds = policy.encode_prompts([prompt] * x.shape[0])
        velocity = policy.velocity(x, torch.full((x.shape[0],), sigma), embeds, settings["guidance"])
        counters.transformer_forwards += x.shape[0]
        x0 = x - sigma * velocity  # the flow's predicted clean latent
        x = sde_step(velocity, x, sigma, sigmas[j + 1].item(), 0.0, generator=list(generators))[0]
        if j + 1 < steps and (trace or pruner.wants_scores(j + 1)):
            scores = _score(policy, x0, prompt, score, counters)
            pruner.note(j + 1, scores.tolist())
            positions = pruner.after_step(j + 1, scores)
            if positions is not None:
                x, generators = x[positions], [generators[p] for p in positions]
    images = policy.decode(x)
    counters.decodes += x.shape[0]
    final_scores = score(images, [prompt] * x.shape[0])
    counters.scores += x.shape[0]
    best = pruner.final(final_scores, keep)
    positions = [p for p, _, _ in best]
    kept = [{"candidate": c, "rank": r, "score": s} for r, (_, c, s) in enumerate(best)]
    return PromptResult(images[positions], x[positions].cpu(), kept, pruner, counters)


def _score(policy, x0: torch.Tensor, prompt: str, score: ScoreFn, counters: Counters) -> torch.Tensor:
    images = policy.decode(x0)
    counters.decodes += x0.shape[0]
    counters.scores += x0.shape[0]
    return torch.as_tensor(score(images, [prompt] * x0.shape[0]), dtype=torch.float32).flatten()
