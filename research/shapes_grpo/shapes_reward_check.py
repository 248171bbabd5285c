"""How well a reward ranks a generator's own samples: within-group AUC against the pixel oracle.

    python -m research.shapes_grpo.shapes_reward_check --model shapes [--lora FILE] --prompts 16

For each held-out prompt, one GRPO group (24 samples from the SDE at the shapes preset's noise level) is scored by
the reward model and judged by the oracle; the AUC is the chance that an oracle-correct sample outscores an
oracle-wrong one of the same prompt (what GRPO's group advantages depend on). 0.5 is no signal. Split:
  within_group_auc            all relations hold vs not
  objects_auc                 every named object drawn in its colour vs not
  relations_given_objects_auc among samples with every object drawn: all relations hold vs not (placement alone)
  verified_auc                every relation holds in a clean picture (oracle_judge's clean_all_ok) vs not
  clean_given_relations_auc   among samples where every relation holds: clean vs not (extra objects, a colour
                              twice or smeared). Below 0.5 the scorer pays for clutter, the shortcut GRPO finds
"""

from __future__ import annotations

import argparse
import json

import torch


def main(argv: list[str] | None = None) -> int:
    from training.grpo.oracle_judge import oracle_verdicts
    from training.grpo.sampling import sample_generators, sample_trajectories

    from .shapes_probe import load_probe

    parser = argparse.ArgumentParser(prog="python -m research.shapes_grpo.shapes_reward_check", description=__doc__)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--lora")
    parser.add_argument("--scorer", default="shapes")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args(argv)
    from training.reward import load_scorer

    s, prompts, policy = load_probe(args.model, args.lora)
    prompts = prompts[: args.prompts]
    scorer = load_scorer(args.scorer, device="cpu")
    sigmas = policy.sigmas(s.num_steps, s.height, s.width)
    counts = {key: [0, 0] for key in ("within_group_auc", "objects_auc", "relations_given_objects_auc",
                                      "verified_auc", "clean_given_relations_auc")}

    def tally(key: str, reward: torch.Tensor, positive: torch.Tensor, among: torch.Tensor) -> None:
        good, bad = reward[positive & among], reward[~positive & among]
        counts[key][0] += (good[:, None] > bad[None, :]).sum().item()
        counts[key][1] += good.numel() * bad.numel()

    for i, prompt in enumerate(prompts):
        with torch.no_grad():
            t = sample_trajectories(policy, policy.encode_prompts([prompt] * s.group_size),
                                    sample_generators(123, i, range(s.group_size)), sigmas,
                                    [s.noise_level] * s.num_steps, guidance=0.0, height=s.height, width=s.width)
            images = policy.decode(t.latents[:, -1])
        reward = scorer.score(images, prompt).mean
        verdicts = oracle_verdicts(images, [prompt] * len(images))
        ok = torch.tensor([all(v["relations"]) for v in verdicts])
        drawn = torch.tensor([v["objects_ok"] for v in verdicts])
        clean = torch.tensor([v["clean"] for v in verdicts])
        everyone = torch.ones_like(ok)
        tally("within_group_auc", reward, ok, everyone)
        tally("objects_auc", reward, drawn, everyone)
        tally("relations_given_objects_auc", reward, ok, drawn)
        tally("verified_auc", reward, ok & clean, everyone)
        tally("clean_given_relations_auc", reward, clean, ok)
    result = {"prompts": len(prompts), "pairs": counts["within_group_auc"][1]}
    for key, (wins, pairs) in counts.items():
        result[key] = round(wins / pairs, 4) if pairs else None
        result[key.replace("auc", "pairs")] = pairs
    print(json.dumps(result))
    if args.json:
        from training.common.atomic import write_text

        write_text(args.json, json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
