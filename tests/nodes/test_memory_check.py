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


# ----- the other families: each estimate from the family's own shapes (nodes/logic/memory_check.transformer_shape)


def qwen_image_like(hidden=3072, blocks=60, dtype=torch.bfloat16, weights=int(38.0 * GIB)):
    """ComfyUI's QwenImageTransformer2DModel (comfy/ldm/qwen_image): inner_dim, transformer_blocks, txt_in; the
    full model is 60 blocks of 3072 (20.4 B parameters, 38.0 GiB in bf16)."""
    net = SimpleNamespace(inner_dim=hidden, patch_size=2, transformer_blocks=[None] * blocks,
                          txt_in=SimpleNamespace(in_features=3584))  # fmt: skip
    return SimpleNamespace(model=SimpleNamespace(diffusion_model=net, manual_cast_dtype=None, get_dtype=lambda: dtype),
                           model_size=lambda: weights)  # fmt: skip


def sd3_like(depth=38, dtype=torch.bfloat16, weights=int(15.1 * GIB), dual=()):
    """ComfyUI's MMDiT (comfy/ldm/modules/diffusionmodules/mmdit.py): hidden_size 64 x depth, joint_blocks,
    context_embedder; SD3.5-large is depth 38 (8.1 B parameters, 15.1 GiB in bf16), SD3.5-medium depth 24 with
    dual-attention blocks 0-12."""
    net = SimpleNamespace(hidden_size=64 * depth, patch_size=2, joint_blocks=[None] * depth,
                          context_embedder=SimpleNamespace(in_features=4096), x_block_self_attn_layers=list(dual))
    return SimpleNamespace(model=SimpleNamespace(diffusion_model=net, manual_cast_dtype=None, get_dtype=lambda: dtype),
                           model_size=lambda: weights)  # fmt: skip


def wan_vae(dim=96):
    """ComfyUI's VAE around a Wan 2.1 WanVAE (Qwen-Image's): a (time, height, width) downscale rule."""
    return SimpleNamespace(latent_channels=16, downscale_ratio=(lambda frames: frames, 8, 8), vae_dtype=torch.bfloat16,
                           first_stage_model=SimpleNamespace(decoder=SimpleNamespace(dim=dim, dim_mult=[1, 2, 4, 4])))


CARD24 = Free(int(21.8 * GIB), 100 * GIB, "cuda:0")  # 95% of a 24 GB card less 1 GiB of CUDA context
CARD80 = Free(int(74.0 * GIB), 100 * GIB, "cuda:0")


def test_each_family_reads_its_own_shape():
    from nodes.logic.memory_check import transformer_shape

    def shape(model):
        return transformer_shape(model.model.diffusion_model)

    flux, small_flux, qwen, sd3 = shape(flux_dev()), shape(flux_like()), shape(qwen_image_like()), shape(sd3_like())
    assert (flux.hidden, flux.blocks, flux.text_width, flux.lora_widths, flux.block_weights) == (3072, 57, 4096, 1330, 36)
    assert (small_flux.blocks, small_flux.lora_widths) == (5, 2 * 36 + 3 * 17)
    assert (qwen.hidden, qwen.blocks, qwen.text_tokens, qwen.text_width, qwen.lora_widths) == (3072, 60, 512, 3584, 2160)
    assert (sd3.hidden, sd3.blocks, sd3.text_tokens, sd3.text_width, sd3.lora_widths) == (2432, 38, 333, 4096, 1356)
    assert (sd3.block_weights, shape(sd3_like(24, dual=range(13))).block_weights) == (36, 43)  # dual attention
    # the Wan VAE: 16 channels, 8x; its full-resolution level's 96 channels live 6 times, and every level's
    # channels (96, 192, 384, 384 at 1, 1/4, 1/16, 1/64 of the pixels) cached 7 times, bf16
    sizes = comfy_sizes(qwen_image_like(), wan_vae())
    assert (sizes.latent_channels, sizes.vae_scale, sizes.multiple) == (16, 8, 16)
    assert sizes.decode_bytes_per_pixel == (6 * 96 + 7 * (96 + 48 + 24 + 6)) * 2


@pytest.mark.parametrize("family", ["Flux", "Qwen-Image", "SD3.5"])
def test_lora_count_is_the_diffusers_targets_count(family):
    """lora_train_bytes counts rank x (in + out) of every default target; a real diffusers transformer of the family
    (small, the same layout) with the targets the node uses gives the same count."""
    import re

    from nodes.comfy.families import default_lora_targets
    from nodes.logic.memory_check import lora_train_bytes
    from training.grpo.lora import target_regex

    if family == "Flux":
        from diffusers import FluxTransformer2DModel

        model = FluxTransformer2DModel(in_channels=16, num_layers=2, num_single_layers=3, attention_head_dim=16,
                                       num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=16,
                                       axes_dims_rope=(4, 6, 6))  # fmt: skip
        net = flux_like(32, 2, 3).model.diffusion_model
    elif family == "Qwen-Image":
        from training.common.tiny_qwen_image import build_tiny_qwen_image_transformer

        model = build_tiny_qwen_image_transformer()  # 2 blocks of 2 x 16
        net = qwen_image_like(32, 2).model.diffusion_model
    else:
        from diffusers import SD3Transformer2DModel

        model = SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=16, num_layers=3, attention_head_dim=16,
                                      num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=32,
                                      pooled_projection_dim=24, out_channels=16, pos_embed_max_size=16,
                                      dual_attention_layers=(0,))  # fmt: skip
        net = SimpleNamespace(hidden_size=32, joint_blocks=[None] * 3)
    pattern = target_regex(default_lora_targets(family))
    per_rank = sum(m.in_features + m.out_features for n, m in model.named_modules() if re.fullmatch(pattern, n))
    assert per_rank and lora_train_bytes(net, 8) == 16 * 8 * per_rank


def test_qwen_image_on_24_gb_is_refused_and_on_80_gb_trains():
    """Full Qwen-Image in bf16 is 38 GiB of weights, trained with its 3.2 GiB LoRA state (rank 32): a 24 GB card
    refuses it before anything runs, even in fp8 (19 GiB of weights + the LoRA state), and an 80 GB card trains G = 24
    at 1024x1024 with true CFG in micro-batches of 2; a tiny Qwen-Image fits the 24 GB card."""
    from nodes.logic.memory_check import lora_train_bytes

    assert lora_train_bytes(qwen_image_like().model.diffusion_model, 32) == 16 * 32 * 3072 * 36 * 60
    with pytest.raises(MemoryLimitError) as exc:
        check_grpo(qwen_image_like(), wan_vae(), 24, sample_batch_size, 1024, 1024, 6, CARD24, true_cfg=True)
    found = re.fullmatch(r"group_size=24 at 1024x1024 needs about ([0-9.]+) GiB, 21\.8 GiB free in cuda:0: the model "
                         r"does not fit even at its smallest size", str(exc.value))
    assert found and float(found[1]) > 38 + 3, str(exc.value)
    fp8 = qwen_image_like(dtype=torch.float8_e4m3fn, weights=int(19.0 * GIB))
    with pytest.raises(MemoryLimitError, match="does not fit even at its smallest size$"):
        check_grpo(fp8, wan_vae(), 24, sample_batch_size, 512, 512, 6, CARD24, true_cfg=True)
    assert check_grpo(qwen_image_like(), wan_vae(), 24, sample_batch_size, 1024, 1024, 6, CARD80, true_cfg=True) == 2
    tiny = qwen_image_like(64, 2, weights=8 * 2**20)
    assert check_grpo(tiny, wan_vae(), 24, sample_batch_size, 512, 512, 6, CARD24, true_cfg=True) == 2


def test_qwen_image_training_grows_with_its_blocks_and_text():
    """The training estimate is the family's own: each of Qwen-Image's 60 checkpointed blocks keeps 2 [tokens, 3072]
    tensors a row for the backward, over its image tokens and its 512 text tokens (Qwen2.5-VL's longest), whose
    3584-wide conditioning each row also holds."""
    from training.common.memory_guard import GRAD_WIDTHS_PER_BLOCK, GRAD_WIDTHS_RECOMPUTE, grpo_need

    def training(model, conditioning=None):  # 4 rows at 1024x1024, no weights (the phases only): training is largest
        sizes = comfy_sizes(model, wan_vae(), conditioning)
        return grpo_need(sizes, group=24, sample_rows=4, train_rows=4, height=1024, width=1024, steps=6).device

    image = (1024 // 16) ** 2
    full = training(qwen_image_like())
    assert full - training(qwen_image_like(blocks=30)) == 4 * GRAD_WIDTHS_PER_BLOCK * 30 * (image + 512) * 3072 * 2
    short = training(qwen_image_like(), [[torch.zeros(1, 20, 3584), {}]])
    widths = GRAD_WIDTHS_RECOMPUTE + GRAD_WIDTHS_PER_BLOCK * 60
    assert full - short == 4 * (512 - 20) * (widths * 3072 + 3584) * 2


def test_sd3_true_cfg_decides_what_fits_on_24_gb():
    """SD3.5-large in bf16 (15.1 GiB of weights, 1.6 GiB of LoRA state at rank 32) on a 24 GB card: 512x512 trains in
    micro-batches of 2 with true CFG; at 1024x1024 one row fits without CFG, but true CFG's two forwards a trained row
    do not fit, and the one line says fp8 weights would; SD3.5-medium fits either way."""
    from nodes.logic.memory_check import lora_train_bytes

    assert lora_train_bytes(sd3_like().model.diffusion_model, 32) == 16 * 32 * 2432 * (36 * 38 - 12)
    assert check_grpo(sd3_like(), comfy_vae(), 24, sample_batch_size, 512, 512, 6, CARD24, true_cfg=True) == 2
    assert check_grpo(sd3_like(), comfy_vae(), 24, sample_batch_size, 1024, 1024, 6, CARD24) == 1
    with pytest.raises(MemoryLimitError, match=r"^group_size=24 at 1024x1024 needs about [0-9.]+ GiB, 21\.8 GiB free "
                                               r"in cuda:0: not even group_size=2 fits at 1024x1024; at most (\d+)x\1 "
                                               r"fits at group_size=2; with the MODEL's weights in fp8 .* it would fit$"):
        check_grpo(sd3_like(), comfy_vae(), 24, sample_batch_size, 1024, 1024, 6, CARD24, true_cfg=True)
    medium = sd3_like(24, weights=int(4.6 * GIB), dual=range(13))
    assert check_grpo(medium, comfy_vae(), 24, sample_batch_size, 1024, 1024, 6, CARD24, true_cfg=True) == 2


def test_best_of_n_reads_a_wan_vae():
    """Best-of-N on Qwen-Image: the Wan VAE's (time, height, width) downscale rule gives its 8x."""
    positive = [[torch.zeros(1, 20, 3584), {}]]
    check_best_of_n(qwen_image_like(64, 2), wan_vae(), positive, 4, 512, 512, 4.0, RAM)
    with pytest.raises(MemoryLimitError, match=r"^n=256 at 2048x2048 needs about"):
        check_best_of_n(qwen_image_like(), wan_vae(), positive, 256, 2048, 2048, 4.0, RAM)
