import pytest
import torch

from nodes.logic.ranking import check_latent, rank, take_images, take_latent, take_mask, utility

MEANS = torch.tensor([0.3, 2.0, -1.0, 0.9, 1.5, 0.1, 1.1, -0.2])
STDS = torch.tensor([0.1, 3.0, 0.2, 0.1, 0.1, 0.5, 0.2, 0.3])


def test_top_k_of_8_descending_by_mean_with_original_indices():
    r = rank(MEANS, STDS, top_k=3)
    assert r.indices.tolist() == [1, 4, 6]
    assert r.mean.tolist() == pytest.approx([2.0, 1.5, 1.1])
    assert r.std.tolist() == pytest.approx([3.0, 0.1, 0.2])
    assert torch.all(r.utility[:-1] >= r.utility[1:])


def test_scores_are_absolute_not_normalised_across_the_batch():
    """The same image keeps the same score whatever else is in the batch (no softmax, no z-scoring)."""
    alone = rank(MEANS[:2], STDS[:2], top_k=2)
    full = rank(MEANS, STDS, top_k=8)
    assert alone.mean[0] == full.mean[0] == MEANS[1]
    assert set(full.mean.tolist()) == set(MEANS.tolist())


def test_risk_averse_ranking_demotes_uncertain_images():
    r = rank(MEANS, STDS, top_k=3, rank_by="mean - lambda*std", risk_lambda=1.0)
    # image 1 has the highest mean (2.0) but std 3.0: utility -1.0
    assert r.indices.tolist() == [4, 6, 3]
    assert r.utility.tolist() == pytest.approx([1.4, 0.9, 0.8])
    assert 1 not in r.indices.tolist()
    # lambda 0 is the plain mean
    assert rank(MEANS, STDS, 3, "mean - lambda*std", 0.0).indices.tolist() == [1, 4, 6]


def test_ties_keep_batch_order_and_top_k_is_clamped():
    r = rank(torch.tensor([1.0, 2.0, 1.0, 2.0]), torch.zeros(4), top_k=10)
    assert r.indices.tolist() == [1, 3, 0, 2]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_top_k(bad):
    with pytest.raises(ValueError, match="top_k"):
        rank(MEANS, STDS, bad)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="rank_by"):
        utility(MEANS, STDS, "median")
    with pytest.raises(ValueError, match="risk_lambda"):
        utility(MEANS, STDS, "mean - lambda*std", -0.5)
    with pytest.raises(ValueError, match="not finite for image"):
        rank(torch.tensor([1.0, float("nan")]), torch.zeros(2), 1)
    with pytest.raises(ValueError, match="2 means but 3"):
        rank(torch.zeros(2), torch.zeros(3), 1)


def test_latent_samples_noise_mask_and_batch_index_follow_the_images():
    n = 8
    samples = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 16, 4, 4).clone()
    latent = {"samples": samples, "noise_mask": torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1),
              "batch_index": [100 + i for i in range(n)], "other": "kept"}
    idx = rank(MEANS, STDS, top_k=4).indices
    out = take_latent(latent, idx, n)
    assert out["samples"].shape == (4, 16, 4, 4)
    assert out["samples"][:, 0, 0, 0].tolist() == idx.float().tolist()
    assert out["noise_mask"].flatten().tolist() == idx.float().tolist()
    assert out["batch_index"] == [100 + i for i in idx.tolist()]
    assert out["other"] == "kept"
    assert latent["samples"].shape[0] == n  # the input is not modified


def test_shared_noise_mask_is_kept():
    latent = {"samples": torch.zeros(3, 4, 2, 2), "noise_mask": torch.ones(1, 1, 2, 2)}
    out = take_latent(latent, torch.tensor([2, 0]), 3)
    assert out["noise_mask"].shape == (1, 1, 2, 2)


def test_latent_batch_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="batch of 4 latents for 8 images"):
        check_latent({"samples": torch.zeros(4, 16, 8, 8)}, 8)
    with pytest.raises(ValueError, match="LATENT"):
        check_latent(torch.zeros(8, 16, 8, 8), 8)


def test_masks_follow_the_images_and_a_single_mask_is_repeated():
    masks = torch.arange(8, dtype=torch.float32).view(8, 1, 1).expand(8, 5, 5).clone()
    idx = torch.tensor([5, 1, 7])
    assert take_mask(masks, idx, 8)[:, 0, 0].tolist() == [5.0, 1.0, 7.0]
    single = take_mask(torch.ones(1, 5, 5) * 0.5, idx, 8)
    assert single.shape == (3, 5, 5) and torch.all(single == 0.5)
    assert take_mask(torch.ones(5, 5), idx, 8).shape == (3, 5, 5)
    with pytest.raises(ValueError, match="batch of 3 masks for 8 images"):
        take_mask(torch.zeros(3, 5, 5), idx, 8)


def test_take_images():
    imgs = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 2, 2, 3)
    assert take_images(imgs, torch.tensor([3, 0]))[:, 0, 0, 0].tolist() == [3.0, 0.0]
