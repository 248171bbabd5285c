"""The tiny FluxPipeline: FLUX.1-dev's architecture at toy size, saved and reloaded offline, deterministic."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from training.common.tiny_flux import (
    build_tiny_clip_tokenizer,
    build_tiny_flux_pipeline,
    build_tiny_t5_tokenizer,
    save_tiny_flux_pipeline,
)

from ..threads import one_torch_thread

PROMPT = "a red circle to the left of a blue square, and a green triangle above the blue square"


def _generate(pipe, prompts, seeds, steps=3):
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    out = pipe(prompts, height=64, width=64, num_inference_steps=steps, guidance_scale=3.5, generator=gens,
               max_sequence_length=64, output_type="np")
    return out.images


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return save_tiny_flux_pipeline(tmp_path_factory.mktemp("tiny_flux") / "flux", seed=0)


def test_architecture_is_flux_dev_like():
    pipe = build_tiny_flux_pipeline(seed=0)
    cfg = pipe.transformer.config
    assert cfg.guidance_embeds is True
    assert sum(cfg.axes_dims_rope) == cfg.attention_head_dim
    assert cfg.in_channels == 4 * pipe.vae.config.latent_channels
    assert cfg.joint_attention_dim == pipe.text_encoder_2.config.d_model
    assert cfg.pooled_projection_dim == pipe.text_encoder.config.hidden_size
    assert pipe.vae_scale_factor == 8  # pixels -> latents like the real VAE
    for module in (pipe.text_encoder, pipe.text_encoder_2, pipe.vae, pipe.transformer):
        assert not module.training


def test_tokenizers_cover_prompt_words():
    clip, t5 = build_tiny_clip_tokenizer(), build_tiny_t5_tokenizer()
    assert clip.model_max_length == 77
    assert "square</w>" in clip.tokenize("a blue square")
    assert t5.tokenize("a red circle") == ["▁a", "▁red", "▁circle"]
    ids = t5("left of")["input_ids"]
    assert ids[-1] == t5.eos_token_id and t5.unk_token_id not in ids


def test_save_load_generate_is_deterministic(saved):
    from diffusers import FluxPipeline

    assert (saved / "model_index.json").is_file()
    assert list(saved.rglob("*.bin")) == []  # safetensors only
    pipe = FluxPipeline.from_pretrained(saved, local_files_only=True)
    assert not pipe.transformer.training
    a = _generate(pipe, [PROMPT, PROMPT], [1, 2])
    b = _generate(pipe, [PROMPT], [1])
    assert a.shape == (2, 64, 64, 3) and np.isfinite(a).all()
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)  # per-image seeds, independent of the batch
    assert np.abs(a[0] - a[1]).max() > 1e-2  # different seeds give different images
    # The reloaded pipeline is the in-memory one: same weights, same images.
    c = _generate(build_tiny_flux_pipeline(seed=0), [PROMPT], [1])
    np.testing.assert_allclose(a[0], c[0], atol=1e-5)


def test_weight_seed_changes_weights():
    p0, p1 = build_tiny_flux_pipeline(seed=0), build_tiny_flux_pipeline(seed=1)
    w0 = p0.transformer.proj_out.weight
    assert not torch.equal(w0, p1.transformer.proj_out.weight)
    assert torch.equal(w0, build_tiny_flux_pipeline(seed=0).transformer.proj_out.weight)


def test_saved_folder_is_identical_across_processes(saved, tmp_path):
    other = tmp_path / "flux_subprocess"
    code = f"from training.common.tiny_flux import save_tiny_flux_pipeline; save_tiny_flux_pipeline({str(other)!r}, seed=0)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2],
                   capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert _digest(other) == _digest(saved)
