"""What the shapes-world diagnostics (shapes_reward_check, shapes_noise_split, shapes_order_probe) share: the shapes
preset's sampling settings, its held-out prompts and the generator (with a LoRA) as a policy on the CPU."""

from __future__ import annotations


def load_probe(model: str, lora: str | None):
    """(the preset's sample settings, the held-out prompts, the policy)."""
    from training.grpo.config import load_config
    from training.grpo.prompts import load_prompts
    from training.grpo.sampling import load_policy
    from training.grpo.shapes_generator import TEXT_LENGTH
    from training.grpo.shipped import resolve_generator, resolve_lora

    config = load_config(preset="shapes", overrides={"output.dir": "unused"})
    policy = load_policy(resolve_generator(model), resolve_lora(lora) if lora else None, "cpu", TEXT_LENGTH)
    return config.sample, load_prompts(config.prompts.eval_file), policy
