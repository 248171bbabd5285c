import pytest
import torch

from nodes.logic.prompts import PromptCountError
from nodes.logic.ranking import rank, take_latent
from nodes.logic.scoring import DirectPlacement, check_image_batch, score_images

from .conftest import FakeResult, make_batch


def test_whole_batch_scored_with_progress_and_offloaded_after(fake_handle):
    handle, scorer, log = fake_handle
    images = make_batch([0.1 * i for i in range(8)])
    progress = []
    table = score_images(handle, images, "a prompt", progress=lambda d, t: progress.append((d, t)))
    assert scorer.calls == [(8, ["a prompt"] * 8)]  # one call, all 8 images, never only the first
    assert table.mean.tolist() == pytest.approx([i * 1.0 for i in range(8)], abs=1e-5)
    assert progress == [(3, 8), (6, 8), (8, 8)]
    assert log == ["load", "offload"]
    assert table.mode == "reward"


def test_keep_loaded_skips_the_offload(fake_handle):
    handle, _, log = fake_handle
    handle.keep_loaded = True
    score_images(handle, make_batch([0.5]), "p")
    assert log == ["load"]


def test_offload_happens_also_when_scoring_fails_or_is_cancelled(fake_handle):
    handle, scorer, log = fake_handle

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        raise Cancelled

    with pytest.raises(Cancelled):
        score_images(handle, make_batch([0.1] * 5), "p", progress=cancel)
    assert log == ["load", "offload"]


def test_prompt_count_mismatch_fails_before_the_model_moves(fake_handle):
    handle, scorer, log = fake_handle
    with pytest.raises(PromptCountError, match="3 prompt lines for a batch of 8 images"):
        score_images(handle, make_batch([0.1] * 8), "a\nb\nc")
    assert log == [] and scorer.calls == []


def test_per_line_prompts_reach_the_scorer_in_order(fake_handle):
    handle, scorer, _ = fake_handle
    score_images(handle, make_batch([0.1, 0.2]), "left\nright")
    assert scorer.calls[-1][1] == ["left", "right"]


def test_wrong_result_size_is_caught(fake_handle):
    handle, scorer, _ = fake_handle
    scorer.score = lambda images, prompts, progress=None: FakeResult(torch.zeros(1), torch.zeros(1))
    with pytest.raises(RuntimeError, match="returned 1 means and 1 stds for 2 images"):
        score_images(handle, make_batch([0.1, 0.2]), "p")


def test_inputs_that_are_not_a_handle_or_an_image_batch(fake_handle):
    handle, _, _ = fake_handle
    with pytest.raises(ValueError, match="SpatialScore Loader"):
        score_images(object(), make_batch([0.1]), "p")
    with pytest.raises(ValueError, match="IMAGE of shape"):
        check_image_batch(torch.zeros(8, 8, 3))
    with pytest.raises(ValueError, match="empty batch"):
        check_image_batch(torch.zeros(0, 8, 8, 3))
    with pytest.raises(ValueError, match="IMAGE batch tensor"):
        check_image_batch([torch.zeros(8, 8, 3)])


def test_rerank_flow_batch_of_8_with_latents(fake_handle):
    handle, _, _ = fake_handle
    reds = [0.3, 0.9, 0.1, 0.7, 0.5, 0.0, 0.8, 0.2]
    images = make_batch(reds)
    latent = {"samples": torch.arange(8.0).view(8, 1, 1, 1).expand(8, 16, 4, 4).clone()}
    table = score_images(handle, images, "p")
    r = rank(table.mean, table.std, top_k=4)
    assert r.indices.tolist() == [1, 6, 3, 4]
    assert torch.all(r.mean[:-1] >= r.mean[1:])
    out = take_latent(latent, r.indices, 8)
    assert out["samples"][:, 0, 0, 0].tolist() == [1.0, 6.0, 3.0, 4.0]


def test_direct_placement_moves_with_to_and_release():
    calls = []

    class S:
        def to(self, d):
            calls.append(("to", str(d)))

        def release(self):
            calls.append(("release",))

    p = DirectPlacement("cpu")
    p.load(S())
    p.offload(S())
    assert calls == [("to", "cpu"), ("release",)]
