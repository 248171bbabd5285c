"""Fixtures for the GRPO tests: the tiny FLUX-architecture pipeline folder, policies on it, tiny-preset configs."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_flux_dir(tmp_path_factory):
    """A tiny random FluxPipeline folder, built offline once per session."""
    from training.common.tiny_flux import save_tiny_flux_pipeline

    return save_tiny_flux_pipeline(tmp_path_factory.mktemp("tiny-flux") / "flux", seed=0)


def make_policy(folder, rank=4, alpha=8.0, seed=0, gradient_checkpointing=False):
    from training.grpo.config import FLUX_LORA_TARGETS
    from training.grpo.flux_policy import FluxPolicy

    return FluxPolicy.from_folder(folder, "cpu", dtype="float32", lora_rank=rank, lora_alpha=alpha,
                                  lora_targets=list(FLUX_LORA_TARGETS), seed=seed,
                                  gradient_checkpointing=gradient_checkpointing, max_sequence_length=64)


@pytest.fixture
def tiny_policy(tiny_flux_dir):
    return make_policy(tiny_flux_dir)


def perturb_lora(policy, scale=0.5, seed=1):
    """Give the LoRA non-zero B matrices (a freshly attached LoRA is the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in policy.named_trainable_parameters().items():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * scale)


def tiny_config(out_dir, flux_dir, scorer_dir, **overrides):
    """The tiny preset pointed at prebuilt model folders, with test-sized overrides."""
    from training.grpo.config import load_config

    values = {"model.path": str(flux_dir), "reward.path": str(scorer_dir), "output.dir": str(out_dir)}
    values.update(overrides)
    return load_config(preset="tiny", overrides=values)
