"""Does the generator know which object a relation is about? Its text encoding and its pictures, with roles swapped.

    python -m research.shapes_grpo.shapes_order_probe --model shapes [--lora FILE] --prompts 100

FLUX gives its text tokens no position in the joint attention (all text ids are 0), so the transformer tells "a red
circle to the left of a blue square" from "a blue square to the left of a red circle" only if the T5 encoder's
token outputs differ by role (or by the pooled CLIP vector). For the 2-object held-out prompts and their
role-swapped twins this reports:
  t5_set_distance     mean distance of each T5 token output to its nearest token of the twin, over the mean token
                      norm: 0 means the two prompts are the same set of tokens to the transformer
  t5_position_change  the same at equal positions (what word order alone changes), for scale
  clip_pooled_change  |pooled(a) - pooled(b)| / |pooled(a)|
  picture_change      mean |image(a) - image(b)| from the same noise (noise 0), over the same for two noises of
                      prompt a: 0 means the generator draws the twin prompts alike
  both_hold           how often the oracle finds prompt a's relation in image(a) and the twin's in image(b): an
                      order-blind generator holds at most one of two contradicting twins (at most 50% over both)
"""

from __future__ import annotations

import argparse
import json

import torch


def swapped(prompt: str) -> str | None:
    """The role-swapped twin of a one-relation prompt ("a red circle above a blue square" -> "a blue square above a
    red circle"), or None when the prompt has more than one relation."""
    from training.dataset.oracle import parse_prompt

    relations = parse_prompt(prompt)
    if len(relations) != 1:
        return None
    r = relations[0]
    first, second = " ".join(r.subject), " ".join(r.object)
    head = f"a {first} "
    if not prompt.startswith(head) or not prompt.endswith(f" a {second}"):
        return None
    middle = prompt[len(head): len(prompt) - len(second) - 3]
    return f"a {second} {middle} a {first}"


def set_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean distance of each row of x to its nearest row of y, over the mean row norm of x."""
    return (torch.cdist(x, y).min(dim=1).values.mean() / x.norm(dim=-1).mean()).item()


def main(argv: list[str] | None = None) -> int:
    from training.grpo.oracle_judge import oracle_verdicts
    from training.grpo.sampling import sample_generators, sample_trajectories

    from .shapes_probe import load_probe

    parser = argparse.ArgumentParser(prog="python -m research.shapes_grpo.shapes_order_probe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--lora")
    parser.add_argument("--prompts", type=int, default=100)
    args = parser.parse_args(argv)

    s, heldout, policy = load_probe(args.model, args.lora)
    pairs = [(p, swapped(p)) for p in heldout]
    pairs = [(a, b) for a, b in pairs if b is not None][: args.prompts]
    sigmas = policy.sigmas(s.num_steps, s.height, s.width)
    figures = {"t5_set_distance": [], "t5_position_change": [], "clip_pooled_change": [], "picture_change": []}
    holds_a, holds_b, both = [], [], []
    for i, (a, b) in enumerate(pairs):
        embeds = policy.encode_prompts([a, b, a])
        t5, pooled = embeds.prompt_embeds, embeds.pooled
        figures["t5_set_distance"].append(set_distance(t5[0], t5[1]))
        figures["t5_position_change"].append(((t5[0] - t5[1]).norm(dim=-1).mean() / t5[0].norm(dim=-1).mean()).item())
        figures["clip_pooled_change"].append(((pooled[0] - pooled[1]).norm() / pooled[0].norm()).item())
        # a and b from the same noise, and a again from another noise (the scale of "a different picture")
        generators = sample_generators(77, i, [0, 0, 1], stream="order_probe")
        with torch.no_grad():
            t = sample_trajectories(policy, embeds, generators, sigmas, [0.0] * s.num_steps, guidance=0.0,
                                    height=s.height, width=s.width)  # fmt: skip
            images = policy.decode(t.latents[:, -1]).float()
        same_noise = (images[0] - images[1]).abs().mean()
        other_noise = (images[0] - images[2]).abs().mean()
        figures["picture_change"].append((same_noise / other_noise.clamp_min(1e-8)).item())
        va, vb = oracle_verdicts(images[:2], [a, b])
        holds_a.append(all(va["relations"]))
        holds_b.append(all(vb["relations"]))
        both.append(holds_a[-1] and holds_b[-1])
    n = len(pairs)
    report = {"pairs": n, **{k: sum(v) / n for k, v in figures.items()}, "holds_a": sum(holds_a) / n,
              "holds_twin": sum(holds_b) / n, "both_hold": sum(both) / n}  # fmt: skip
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
