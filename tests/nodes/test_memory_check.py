"""The nodes' memory guard over ComfyUI's objects (read by attribute; here small stand-ins of a Flux MODEL, a VAE
and the conditioning): a count or a size that cannot fit is refused before sampling, naming the largest that fits."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
import torch

from nodes.logic.grpo_node import sample_batch_size
from nodes.logic.memory_check import check_best_of_n, check_grpo, comfy_sizes, vae_decode_bytes_per_pixel
from training.common.memory_guard import GIB, Free, MemoryLimitError

RAM = Free(4 * GIB, 4 * GIB, "RAM")


def _block(cin, cout):
    return SimpleNamespace(in_channels=cin, out_channels=cout)


def flux_like(hidden=128, double=2, single=3, dtype=torch.float32, weights=8 * 2**20):
    """A ModelPatcher-like stand-in: model.model.diffusion_model with the attributes of ComfyUI's Flux."""
    net = SimpleNamespace(hidden_size=hidden, patch_size=2, double_blocks=[None] * double,
                          single_blocks=[None] * single, params=SimpleNamespace(context_in_dim=4096))  # fmt: skip
    return SimpleNamespace(model=SimpleNamespace(diffusion_model=net, manual_cast_dtype=None, get_dtype=lambda: dtype),
                           model_size=lambda: weights)  # fmt: skip


def flux_dev():
    return flux_like(3072, 19, 38, torch.bfloat16, weights=int(22.7 * GIB))


def comfy_vae(latent_channels=16, scale=8):
    """ComfyUI's own decoder layout (FLUX.1's VAE from Load VAE): up[i] works at 1/2^i of the size."""
    up = [SimpleNamespace(block=[_block(256, 128), _block(128, 128)]),
          SimpleNamespace(block=[_block(512, 256), _block(256, 256)]),
          SimpleNamespace(block=[_block(512, 512)]), SimpleNamespace(block=[_block(512, 512)])]  # fmt: skip
    return SimpleNamespace(latent_channels=latent_channels, downscale_ratio=scale, vae_dtype=torch.bfloat16,
                           first_stage_model=SimpleNamespace(decoder=SimpleNamespace(up=up)))  # fmt: skip


def test_sizes_come_from_the_model_the_vae_and_the_conditioning():
    positive = [[torch.zeros(1, 77, 4096), {}]]
    sizes = comfy_sizes(flux_dev(), comfy_vae(), positive)
    assert (sizes.hidden, sizes.blocks, sizes.patch, sizes.multiple) == (3072, 57, 2, 16)
    assert (sizes.text_tokens, sizes.text_width, sizes.act_bytes, sizes.weight_bytes) == (77, 4096, 2, 0)
    assert sizes.decode_bytes_per_pixel == 6 * 256 * 2  # full resolution holds the 256 upsampled channels, bf16
    assert comfy_sizes(flux_like(), comfy_vae()).text_tokens == 512  # no conditioning: T5's longest


def test_a_unet_is_not_flux_like():
    unet = SimpleNamespace(model=SimpleNamespace(diffusion_model=SimpleNamespace(), get_dtype=lambda: torch.float16))
    assert comfy_sizes(unet, comfy_vae()) is None


def test_a_vae_with_neither_decoder_layout_uses_comfyuis_own_estimate():
    vae = SimpleNamespace(latent_channels=16, downscale_ratio=8, vae_dtype=torch.bfloat16,
                          first_stage_model=SimpleNamespace(),
                          memory_used_decode=lambda shape, dtype: 2178 * shape[2] * shape[3] * 64 * 2)  # fmt: skip
    assert vae_decode_bytes_per_pixel(vae, 2) == 2178 * 2


def test_best_of_n_refuses_n_that_cannot_fit_naming_the_largest_that_does():
    positive = [[torch.zeros(1, 40, 128), {}]]
    vae = comfy_vae(latent_channels=8, scale=4)
    check_best_of_n(flux_like(), vae, positive, 16, 64, 64, 1.0, RAM)  # the example workflow's setting fits
    with pytest.raises(MemoryLimitError) as exc:
        check_best_of_n(flux_like(), vae, positive, 100000, 64, 64, 1.0, RAM)
    found = re.fullmatch(r"n=100000 at 64x64 needs about ([0-9.]+) GiB, 4\.0 GiB free in RAM: at most n=(\d+) fits",
                         str(exc.value))
    assert found and float(found[1]) > 4, str(exc.value)
    most = int(found[2])
    check_best_of_n(flux_like(), vae, positive, most, 64, 64, 1.0, RAM)
    with pytest.raises(MemoryLimitError):
        check_best_of_n(flux_like(), vae, positive, most + 1, 64, 64, 1.0, RAM)
    # cfg != 1 sends cond and uncond through the model together: fewer candidates fit
    with pytest.raises(MemoryLimitError, match=r"at most n=(\d+) fits") as cfg:
        check_best_of_n(flux_like(), vae, positive, 100000, 64, 64, 3.0, RAM)
    assert int(re.search(r"n=(\d+) fits", str(cfg.value))[1]) < most


def test_best_of_n_at_a_size_where_one_image_does_not_fit_names_the_size():
    with pytest.raises(MemoryLimitError) as exc:
        check_best_of_n(flux_dev(), comfy_vae(), None, 256, 8192, 8192, 1.0, RAM)
    found = re.search(r"not even n=1 fits at 8192x8192; at most (\d+)x(\d+) fits at n=1$", str(exc.value))
    assert found and int(found[1]) == int(found[2]) and int(found[1]) % 16 == 0 and int(found[1]) < 8192


def test_a_model_comfyui_estimates_itself_uses_its_memory_required():
    unet = SimpleNamespace(model=SimpleNamespace(diffusion_model=SimpleNamespace(), get_dtype=lambda: torch.float16,
                                                 memory_required=lambda shape: shape[0] * 100 * 2**20))  # fmt: skip
    with pytest.raises(MemoryLimitError, match=r"^n=256 at 512x512 needs about 2[5-9]\.\d GiB"):
        check_best_of_n(unet, comfy_vae(latent_channels=4), None, 256, 512, 512, 1.0, RAM)


def test_grpo_refuses_what_cannot_fit_and_never_advises_a_group_under_two():
    """FLUX.1-dev (bf16) on a 32 GB card: G = 24 at 512x512 fits; at 1024x1024 training one sample at a time does
    not, whatever the group, so the largest size is named (and that fp8 weights would fit)."""
    gpu = Free(int(29.4 * GIB), 100 * GIB, "cuda:0")
    check_grpo(flux_dev(), comfy_vae(), 24, sample_batch_size, 512, 512, 6, gpu)
    with pytest.raises(MemoryLimitError) as exc:
        check_grpo(flux_dev(), comfy_vae(), 8, sample_batch_size, 1024, 1024, 6, gpu)
    found = re.fullmatch(r"group_size=8 at 1024x1024 needs about ([0-9.]+) GiB, 29\.4 GiB free in cuda:0: not even "
                         r"group_size=2 fits at 1024x1024; at most (\d+)x(\d+) fits at group_size=2; with the MODEL's "
                         r"weights in fp8 \(UNETLoader weight_dtype fp8_e4m3fn\) it would fit", str(exc.value))
    assert found and float(found[1]) > 29.4 and found[2] == found[3] and 512 <= int(found[2]) < 1024, str(exc.value)
    check_grpo(flux_dev(), comfy_vae(), 2, sample_batch_size, int(found[2]), int(found[2]), 6, gpu)


def flux_dev_fp8():
    """FLUX.1-dev loaded with UNETLoader's weight_dtype fp8_e4m3fn: its real parameter bytes, 11.1 GiB."""
    return flux_like(3072, 19, 38, torch.float8_e4m3fn, weights=int(11.1 * GIB))


def test_grpo_on_24_and_16_gb_cards_with_fp8_weights():
    """The cards of docs/memory_plan.md (95% of the card less 1 GiB of CUDA context): fp8 FLUX.1-dev trains G = 24
    at 512x512 on 24 GB (micro-batch 2), at 1024x1024 with micro-batch 1 (the same update, accumulated); bf16 does
    not fit 24 GB and the one line says fp8 would; 16 GB is refused with both figures."""
    from nodes.logic.memory_check import lora_train_bytes

    assert lora_train_bytes(flux_dev().model.diffusion_model, 32) == 16 * 130_744_320  # 0.49 GiB of fp32 LoRA x 4
    card24, card16 = Free(int(21.8 * GIB), 100 * GIB, "cuda:0"), Free(int(14.2 * GIB), 100 * GIB, "cuda:0")
    assert check_grpo(flux_dev_fp8(), comfy_vae(), 24, sample_batch_size, 512, 512, 6, card24) == 2
    assert check_grpo(flux_dev_fp8(), comfy_vae(), 24, sample_batch_size, 1024, 1024, 6, card24) == 1
    with pytest.raises(MemoryLimitError, match=r"^group_size=24 at 512x512 needs about [0-9.]+ GiB, 21\.8 GiB free in "
                                               r"cuda:0: .*; with the MODEL's weights in fp8 .* it would fit$"):
        check_grpo(flux_dev(), comfy_vae(), 24, sample_batch_size, 512, 512, 6, card24)
    with pytest.raises(MemoryLimitError) as exc:
        check_grpo(flux_dev_fp8(), comfy_vae(), 24, sample_batch_size, 512, 512, 6, card16)
    needed = float(re.match(r"group_size=24 at 512x512 needs about ([0-9.]+) GiB, 14\.2 GiB free", str(exc.value))[1])
    assert 14.2 < needed < 17 and "\n" not in str(exc.value), str(exc.value)


def test_grpo_names_the_largest_group_when_the_group_is_what_does_not_fit():
    """The shapes generator at 64x64 in RAM: the group's latents and images grow with it."""
    check_grpo(flux_like(), comfy_vae(8, 4), 24, sample_batch_size, 64, 64, 6, RAM)  # the shapes example fits
    with pytest.raises(MemoryLimitError) as exc:
        check_grpo(flux_like(), comfy_vae(8, 4), 256, sample_batch_size, 512, 512, 40, Free(GIB, GIB, "RAM"))
    found = re.fullmatch(r"group_size=256 at 512x512 needs about [0-9.]+ GiB, 1\.0 GiB free in RAM: at most "
                         r"group_size=(\d+) fits", str(exc.value))
    assert found and 2 <= int(found[1]) < 256, str(exc.value)


def test_grpo_with_true_cfg_keeps_two_forwards_a_trained_row():
    """Chroma (FLUX.1's widths, 8.9 B parameters) samples and trains with true CFG: the training micro-batch keeps
    the prompt's and the negative's activations, so where 2 rows fit without CFG, 1 does with it."""
    chroma_fp8 = flux_like(3072, 19, 38, torch.float8_e4m3fn, weights=int(8.3 * GIB))
    card24 = Free(int(21.8 * GIB), 100 * GIB, "cuda:0")
    assert check_grpo(chroma_fp8, comfy_vae(), 24, sample_batch_size, 1024, 768, 6, card24) == 2
    assert check_grpo(chroma_fp8, comfy_vae(), 24, sample_batch_size, 1024, 768, 6, card24, true_cfg=True) == 1
