"""Which randomness decides a sample's outcome: the initial noise, or the noise the SDE adds while sampling?

    python -m research.shapes_grpo.shapes_noise_split --model shapes [--lora FILE] --prompts 32 --noise 0.7

GRPO's policy gradient only sees the SDE steps: each step's log-probability is a Gaussian around the model's mean,
and its gradient is (the step's own noise) x (d mean / d theta). An outcome decided by the initial noise x_T alone
is uncorrelated with every step's noise, so it contributes nothing to the expected gradient, however well the
reward ranks it: the group advantage of such an outcome is credited to noise that did not cause it.

For each held-out prompt this draws K initial noises and J SDE continuations of each (same x_T, fresh step noise),
judges every picture with the pixel oracle, and splits the variance of each binary outcome into the part within
one x_T (what the SDE noise decides: the learnable part) and the part between x_Ts:
  objects_ok   (a) every named object drawn in its colour
  all_ok       (c) every stated relation holds
  placement    (c) among the pictures with every object drawn
"""

from __future__ import annotations

import argparse
import json

import torch


def variance_split(prompts: list[list[torch.Tensor]]) -> dict[str, float]:
    """Per prompt, a list of rows (one per x_T) of 0/1 outcomes, rows of any length. The share within one x_T: the
    sample-weighted within-row variance over the total variance, both summed over prompts."""
    total, within = 0.0, 0.0
    for rows in prompts:
        rows = [r.float() for r in rows if r.numel() >= 1]
        flat = torch.cat(rows) if rows else torch.zeros(0)
        if flat.numel() < 2:
            continue
        total += flat.var(unbiased=False).item() * flat.numel()
        within += sum(r.var(unbiased=False).item() * r.numel() for r in rows if r.numel() >= 2)
    return {"within_share": within / total if total else float("nan")}


def sample_split(policy, prompt: str, k: int, j: int, noise: float, seed: int, s) -> list[dict]:
    """K x J samples: row r shares its initial noise, every sample has its own step noise."""
    from training.grpo.oracle_judge import oracle_verdicts
    from training.grpo.sampling import sample_seed
    from training.grpo.sde import step_fn

    starts = [torch.Generator("cpu").manual_seed(sample_seed(seed, r, 0, "x_T")) for r in range(k)]
    x = policy.initial_noise(starts, s.height, s.width).repeat_interleave(j, dim=0)
    steps = [torch.Generator("cpu").manual_seed(sample_seed(seed, r, c, "steps")) for r in range(k) for c in range(j)]
    sigmas = policy.sigmas(s.num_steps, s.height, s.width)
    embeds = policy.encode_prompts([prompt] * (k * j))
    step = step_fn(s.sde_type)
    with torch.no_grad():
        for i in range(len(sigmas) - 1):
            sigma = sigmas[i].item()
            velocity = policy.velocity(x, torch.full((x.shape[0],), sigma), embeds, 0.0)
            x, _, _, _ = step(velocity, x, sigma, sigmas[i + 1].item(), noise, generator=steps)
        images = policy.decode(x)
    return oracle_verdicts(images, [prompt] * len(images))


def main(argv: list[str] | None = None) -> int:
    from .shapes_probe import load_probe

    parser = argparse.ArgumentParser(prog="python -m research.shapes_grpo.shapes_noise_split", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--lora")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--k", type=int, default=6, help="initial noises per prompt")
    parser.add_argument("--j", type=int, default=6, help="SDE continuations of each")
    parser.add_argument("--noise", type=float, nargs="+", default=[0.7], help="SDE noise levels to compare")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)

    sample, prompts, policy = load_probe(args.model, args.lora)
    prompts = prompts[: args.prompts]
    report = {}
    for noise in args.noise:
        found = {"objects_ok": [], "all_ok": [], "placement": []}
        rates = {key: [] for key in found}
        for p, prompt in enumerate(prompts):
            verdicts = sample_split(policy, prompt, args.k, args.j, noise, args.seed + p, sample)
            drawn = torch.tensor([v["objects_ok"] for v in verdicts]).view(args.k, args.j)
            holds = torch.tensor([all(v["relations"]) for v in verdicts]).view(args.k, args.j)
            found["objects_ok"].append(list(drawn))
            found["all_ok"].append(list(holds))
            # placement: among the pictures with every object drawn (rows of unequal length)
            found["placement"].append([h[d] for h, d in zip(holds, drawn, strict=True)])
            rates["objects_ok"] += drawn.flatten().tolist()
            rates["all_ok"] += holds.flatten().tolist()
            rates["placement"] += holds[drawn].tolist()
        report[str(noise)] = {key: {**variance_split(v), "rate": sum(rates[key]) / max(1, len(rates[key])),
                                    "samples": len(rates[key])} for key, v in found.items()}  # fmt: skip
        print(json.dumps({"noise": noise, **report[str(noise)]}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
