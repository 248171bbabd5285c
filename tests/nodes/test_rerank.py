import pytest
import torch

from nodes.logic.rerank import check_carried, rerank
from nodes.logic.scoring import ScoreTable

from .conftest import make_batch


def table(means, stds=None, prompts=None):
    n = len(means)
    return ScoreTable(mean=torch.tensor(means), std=torch.tensor(stds or [0.0] * n),
                      prompts=prompts or [f"p{i}" for i in range(n)], mode="reward")


def test_rerank_batch_of_8_carries_images_latents_masks_and_prompts():
    means = [0.3, 2.0, -1.0, 0.9, 1.5, 0.1, 1.1, -0.2]
    images = make_batch([0.1] * 8)  # green channel = index / 100
    latent = {"samples": torch.arange(8.0).view(8, 1, 1, 1).expand(8, 16, 2, 2).clone(), "batch_index": list(range(8))}
    masks = torch.arange(8.0).view(8, 1, 1).expand(8, 16, 16).clone()
    best = rerank(table(means), images, 3, latent=latent, mask=masks)
    assert best.ranking.indices.tolist() == [1, 4, 6]
    assert best.ranking.mean.tolist() == pytest.approx([2.0, 1.5, 1.1])
    assert (best.images[:, 0, 0, 1] * 100).round().tolist() == [1.0, 4.0, 6.0]
    assert best.latent["samples"][:, 0, 0, 0].tolist() == [1.0, 4.0, 6.0]
    assert best.latent["batch_index"] == [1, 4, 6]
    assert best.mask[:, 0, 0].tolist() == [1.0, 4.0, 6.0]
    assert best.prompts == ["p1", "p4", "p6"]
    assert best.report[0] == "top 3 of 8 by mean" and len(best.report) == 9
    assert best.report[1].startswith("#1 (image 1): 2.000")


def test_rerank_without_latent_or_mask_and_risk_averse_header():
    best = rerank(table([1.0, 2.0], [0.0, 5.0]), make_batch([0.1, 0.2]), 1, "mean - lambda*std", 0.5)
    assert best.latent is None and best.mask is None
    assert best.ranking.indices.tolist() == [0]
    assert best.report[0] == "top 1 of 2 by mean - lambda*std (lambda 0.5)"


def test_mismatched_batches_fail_with_clear_errors():
    with pytest.raises(ValueError, match="batch of 7 latents for 8 images"):
        check_carried(8, latent={"samples": torch.zeros(7, 4, 2, 2)})
    with pytest.raises(ValueError, match="batch of 2 masks for 8 images"):
        check_carried(8, mask=torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="3 scores for 2 images"):
        rerank(table([1.0, 2.0, 3.0]), make_batch([0.1, 0.2]), 1)
