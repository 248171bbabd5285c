"""Shared helpers for the node tests: a duck-typed scorer with known scores, and a recording placement."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from nodes.logic.discovery import ScorerFolder
from nodes.logic.scoring import ScorerHandle


@dataclass
class FakeResult:
    mean: torch.Tensor
    std: torch.Tensor
    mode: str = "reward"


class FakeScorer:
    """Scores an image by its mean red channel, std by its mean blue channel: known, per-image, batch-independent.

    Reports progress after every `batch_size` images, like training.reward.Scorer.
    """

    mode = "reward"

    def __init__(self, batch_size: int = 3):
        self.batch_size = batch_size
        self.calls: list[tuple[int, list[str]]] = []

    def score(self, images, prompts, progress=None):
        self.calls.append((images.shape[0], list(prompts)))
        n = images.shape[0]
        for done in range(self.batch_size, n + self.batch_size, self.batch_size):
            if progress is not None:
                progress(min(done, n), n)
        return FakeResult(mean=images[..., 0].mean(dim=(1, 2)) * 10, std=images[..., 2].mean(dim=(1, 2)))


class RecordingPlacement:
    def __init__(self, log: list):
        self.log = log

    def load(self, scorer):
        self.log.append("load")

    def offload(self, scorer):
        self.log.append("offload")


def make_batch(reds: list[float], blues: list[float] | None = None, size: int = 16) -> torch.Tensor:
    """An IMAGE batch whose image i has red = reds[i] and blue = blues[i] everywhere."""
    blues = blues if blues is not None else [0.0] * len(reds)
    img = torch.zeros(len(reds), size, size, 3)
    for i, (r, b) in enumerate(zip(reds, blues, strict=True)):
        img[i, ..., 0] = r
        img[i, ..., 2] = b
        img[i, ..., 1] = i / 100.0  # identity: green channel encodes the batch index
    return img


@pytest.fixture
def fake_handle(tmp_path):
    log: list = []
    scorer = FakeScorer()
    handle = ScorerHandle(scorer=scorer, folder=ScorerFolder("fake", tmp_path, "scorer"),
                          placement=RecordingPlacement(log))
    return handle, scorer, log
