"""Shared fixtures: tiny models of the real architectures, built offline once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A tiny random Qwen2.5-VL checkpoint folder (zero-shot scorable, LoRA-trainable)."""
    from training.reward.models.tiny import save_tiny_qwen25vl

    return save_tiny_qwen25vl(tmp_path_factory.mktemp("tiny-base") / "qwen", seed=0)


@pytest.fixture(scope="session")
def tiny_scorer_full(tmp_path_factory):
    """A tiny scorer folder with full weights and a random head."""
    from training.reward.models.tiny import save_tiny_scorer

    return save_tiny_scorer(tmp_path_factory.mktemp("tiny-scorer") / "full", seed=1)
