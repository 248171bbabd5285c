"""How well a reward ranks a generator's own samples: within-group AUC against the pixel oracle.

    python -m training.grpo.recipes.shapes_reward_check --model shapes [--lora FILE] --prompts 16

For each held-out prompt, one GRPO group (24 samples from the SDE at the shapes preset's noise level) is scored by
the reward model and judged by the oracle; the AUC is the chance that an oracle-correct sample outscores an
oracle-wrong one of the same prompt (what GRPO's group advantages depend on). 0.5 is no signal.
"""

from __future__ import annotations

import argparse
import json

import torch


def main(argv: list[str] | None = None) -> int:
    from ..assets import resolve_generator, resolve_lora
    from ..config import load_config
    from ..oracle_eval import oracle_verdicts
    from ..prompts import load_prompts
    from ..sample import load_policy
    from ..sampling import sample_generators, sample_trajectories

    parser = argparse.ArgumentParser(prog="python -m training.grpo.recipes.shapes_reward_check", description=__doc__)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--lora")
    parser.add_argument("--scorer", default="shapes")
    parser.add_argument("--prompts", type=int, default=16)
    args = parser.parse_args(argv)
    from training.reward import load_scorer

    s = load_config(preset="shapes", overrides={"output.dir": "unused"}).sample
    heldout = load_config(preset="shapes", overrides={"output.dir": "unused"}).prompts.eval_file
    prompts = load_prompts(heldout)[: args.prompts]
    lora = resolve_lora(args.lora) if args.lora else None
    policy = load_policy(resolve_generator(args.model), lora, "cpu", 40)
    scorer = load_scorer(args.scorer, device="cpu")
    sigmas = policy.sigmas(s.num_steps, s.height, s.width)
    wins = pairs = 0
    for i, prompt in enumerate(prompts):
        with torch.no_grad():
            t = sample_trajectories(policy, policy.encode_prompts([prompt] * s.group_size),
                                    sample_generators(123, i, range(s.group_size)), sigmas,
                                    [s.noise_level] * s.num_steps, guidance=0.0, height=s.height, width=s.width)
            images = policy.decode(t.latents[:, -1])
        reward = scorer.score(images, prompt).mean
        ok = torch.tensor([all(v["relations"]) for v in oracle_verdicts(images, [prompt] * len(images))])
        good, bad = reward[ok], reward[~ok]
        wins += (good[:, None] > bad[None, :]).sum().item()
        pairs += good.numel() * bad.numel()
    result = {"prompts": len(prompts), "pairs": pairs, "within_group_auc": wins / max(1, pairs)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
