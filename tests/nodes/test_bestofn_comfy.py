"""The Best-of-N Sampler on ComfyUI's own sampling (nodes/comfy/segments.py), in process, on the shipped shapes
generator loaded the ComfyUI way and the shipped shapes scorer:

- schedule none is KSampler on a batch of N with the same seed, VAE-decoded, then the Rerank node's logic: the
  same kept candidates, images, latents and scores;
- a pruned run (euler) finishes each survivor into the very image it has in the full batch, for fewer forwards,
  and drops the candidates whose x0 previews (the sampler callback's denoised) score lowest;
- cfg != 1 without a negative is refused; with one, cond and uncond are both counted.

Skipped with the reason when ComfyUI does not import in this python (run with .comfyui/venv/bin/python).
"""

from __future__ import annotations

import pytest
import torch

from .comfy_inprocess import import_comfy

REASON = import_comfy()
pytestmark = [pytest.mark.skipif(bool(REASON), reason=REASON or "ComfyUI importable"), pytest.mark.slow, pytest.mark.real_parts]
PROMPT = "a red circle to the left of a blue square"
N, STEPS, SEED, SIZE = 6, 6, 123, 64


@pytest.fixture(scope="module")
def world():
    from nodes.comfy.shapes_generator import load_shapes_generator
    from nodes.logic.discovery import ScorerFolder
    from nodes.logic.scoring import DirectPlacement, ScorerHandle
    from training.reward.scorer import load_scorer

    torch.set_num_threads(1)
    model, clip, vae = load_shapes_generator("shapes")
    positive = clip.encode_from_tokens_scheduled(clip.tokenize(PROMPT))
    handle = ScorerHandle(scorer=load_scorer("shapes", device="cpu"), folder=ScorerFolder("shapes", None, "scorer"),
                          placement=DirectPlacement("cpu"))  # fmt: skip
    return model, positive, vae, handle


def best_of_n(world, n=N, keep=1, schedule="none", cfg=1.0, negative=None, sampler="euler", trace=None):
    from nodes.comfy.segments import ComfySegments, decode_images
    from nodes.logic.bestofn_node import BestOfNSettings, pruned_best_of_n
    from nodes.logic.scoring import score_images

    model, positive, vae, handle = world
    segments = ComfySegments(model, positive, negative, cfg, sampler, "simple", STEPS, SEED)

    def score(images):
        means = score_images(handle, images, PROMPT, "same for all").mean
        if trace is not None:
            trace.append(means)
        return means

    latent = segments.empty_latent(n, SIZE, SIZE, vae.downscale_ratio)
    result = pruned_best_of_n(BestOfNSettings(n, keep, schedule, STEPS), latent, segments,
                              lambda x: decode_images(vae, x), score, PROMPT, lambda: segments.forwards)  # fmt: skip
    return result, segments


def test_schedule_none_is_ksampler_on_a_batch_then_rerank(world):
    import comfy.sample

    from nodes.logic.rerank import rerank
    from nodes.logic.scoring import score_images

    model, positive, vae, handle = world
    result, segments = best_of_n(world, keep=3)
    latent = torch.zeros(N, model.get_model_object("latent_format").latent_channels, SIZE // vae.downscale_ratio,
                         SIZE // vae.downscale_ratio)  # fmt: skip
    samples = comfy.sample.sample(model, comfy.sample.prepare_noise(latent, SEED), STEPS, 1.0, "euler", "simple",
                                  positive, positive, latent, seed=SEED)  # fmt: skip
    images = vae.decode(samples).float()
    theirs = rerank(score_images(handle, images, PROMPT), images, 3, latent={"samples": samples})
    assert result.candidates == theirs.ranking.indices.tolist()
    assert result.scores == pytest.approx(theirs.ranking.mean.tolist(), abs=1e-6)
    assert (result.images - theirs.images).abs().max().item() < 1e-6
    assert (result.latents - theirs.latent["samples"]).abs().max().item() < 1e-6
    assert result.report["transformer_forwards"] == N * STEPS and result.pruner.dropped == []


def test_pruned_survivors_finish_into_their_full_batch_images(world):
    from training.bestofn.schedule import forwards

    full, _ = best_of_n(world, keep=N)
    trace: list[torch.Tensor] = []
    pruned, segments = best_of_n(world, keep=2, schedule="3@0.34,2@0.5", trace=trace)
    stages = pruned.report["stages"]
    assert [s["step"] for s in stages] == [2, 3]
    assert segments.forwards == pruned.report["transformer_forwards"] == N * 2 + 3 * 1 + 2 * 3 < N * STEPS
    assert forwards(N, pruned.pruner.stages, STEPS) == segments.forwards
    full_images = {c: full.images[i] for i, c in enumerate(full.candidates)}
    for i, c in enumerate(pruned.candidates):
        # the hand-over between segments (x / (1 - sigma), then x (1 - sigma)) costs only float rounding
        assert (pruned.images[i] - full_images[c]).abs().max().item() < 1e-4
    # the first round scored all N x0 previews and dropped the 3 lowest
    first = trace[0]
    assert first.numel() == N
    dropped_first = sorted(d["candidate"] for d in pruned.pruner.dropped if d["step"] == 2)
    assert dropped_first == sorted(torch.sort(first, descending=True, stable=True).indices[3:].tolist())
    # the previews are real x0 images: they score like images of the prompt's world, not noise
    assert pruned.report["decodes"] == N + 3 + 2


def test_cfg_needs_a_negative_and_counts_both(world):
    from nodes.comfy.segments import ComfySegments

    model, positive, _, _ = world
    with pytest.raises(ValueError, match="negative: cfg 3 needs a negative"):
        ComfySegments(model, positive, None, 3.0, "euler", "simple", STEPS, SEED)
    result, segments = best_of_n(world, n=2, keep=1, cfg=3.0, negative=positive)
    assert segments.forwards == 2 * 2 * STEPS  # cond and uncond rows
    assert result.report["full_forwards"] == 2 * 2 * STEPS
