"""The Best-of-N Sampler's pruning on a Qwen-Image MODEL, in process: ComfyUI's own QwenImage model class with tiny
random weights (tests/nodes/tiny_qwen_image_comfy.py), true CFG 4 against a negative conditioning, ComfyUI's sampler
through nodes/comfy/segments.py, the shipped shapes scorer. Schedule none is KSampler on a batch of N; a pruned run
finishes each survivor into the image it has in the full batch, for fewer forwards.

Skipped with the reason when ComfyUI does not import in this python (run with .comfyui/venv/bin/python).
"""

from __future__ import annotations

import pytest
import torch

from .comfy_inprocess import import_comfy
from .tiny_qwen_image_comfy import PipelineClip, PipelineVae, comfy_qwen_image_model

REASON = import_comfy()
pytestmark = [pytest.mark.skipif(bool(REASON), reason=REASON or "ComfyUI importable"), pytest.mark.slow,
              pytest.mark.real_parts]  # fmt: skip
PROMPT = "a red circle to the left of a blue square"
N, STEPS, SEED, SIZE, CFG = 4, 4, 7, 64, 4.0


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from diffusers import QwenImagePipeline

    from nodes.logic.discovery import ScorerFolder
    from nodes.logic.scoring import DirectPlacement, ScorerHandle
    from training.common.tiny_qwen_image import save_tiny_qwen_image_pipeline
    from training.reward.scorer import load_scorer

    torch.set_num_threads(1)
    folder = save_tiny_qwen_image_pipeline(tmp_path_factory.mktemp("tiny-qwen") / "qwen_image", seed=0)
    pipe = QwenImagePipeline.from_pretrained(str(folder), torch_dtype=torch.float32, local_files_only=True)
    clip = PipelineClip(pipe)
    positive = [[clip.encode_from_tokens(PROMPT)["cond"], {}]]
    negative = [[clip.encode_from_tokens(" ")["cond"], {}]]
    handle = ScorerHandle(scorer=load_scorer("shapes", device="cpu"), folder=ScorerFolder("shapes", None, "scorer"),
                          placement=DirectPlacement("cpu"))  # fmt: skip
    return comfy_qwen_image_model(pipe.transformer), positive, negative, PipelineVae(pipe), handle


def best_of_n(world, schedule, keep=1):
    from nodes.comfy.segments import ComfySegments, decode_images, vae_downscale
    from nodes.logic.bestofn_node import BestOfNSettings, pruned_best_of_n
    from nodes.logic.scoring import score_images

    model, positive, negative, vae, handle = world
    segments = ComfySegments(model, positive, negative, CFG, "euler", "simple", STEPS, SEED)
    settings = BestOfNSettings(N, keep, schedule, STEPS)
    latent = segments.empty_latent(N, SIZE, SIZE, vae_downscale(vae))
    assert latent.ndim == 5  # one frame, as KSampler gives Qwen-Image (comfy.sample.fix_empty_latent_channels)
    result = pruned_best_of_n(settings, latent, segments, lambda x: decode_images(vae, x),
                              lambda images: score_images(handle, images, PROMPT, "same for all").mean, PROMPT,
                              forward_count=lambda: segments.forwards)  # fmt: skip
    return result, segments.forwards


def test_pruned_best_of_n_runs_on_qwen_image_with_cfg(world):
    full, full_forwards = best_of_n(world, "none", keep=N)
    pruned, pruned_forwards = best_of_n(world, "default")
    assert full.images.shape == (N, SIZE, SIZE, 3) and pruned.images.shape == (1, SIZE, SIZE, 3)
    assert pruned_forwards < full_forwards == N * STEPS * 2  # cond and uncond rows, every step
    # the survivor is the image it has in the full batch (euler: no history to restart)
    index = full.candidates.index(pruned.candidates[0])
    torch.testing.assert_close(pruned.images[0], full.images[index], rtol=0, atol=1e-4)
