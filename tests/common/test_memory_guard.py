"""The memory estimate before sampling: the model's sizes read from its folder, the largest setting that fits, the
free memory, and the sides a model takes."""

from __future__ import annotations

import dataclasses
import json

import pytest

from training.common.memory_guard import (
    GIB,
    FlowSizes,
    Free,
    MemoryLimitError,
    Need,
    available_ram,
    check_fits,
    check_side,
    flux_folder_sizes,
    free_memory,
    largest,
    largest_size,
    parameter_count,
    sampling_need,
)


def _sizes(**overrides) -> FlowSizes:
    values = {"latent_channels": 16, "vae_scale": 8, "hidden": 3072, "blocks": 57, "text_tokens": 512,
              "text_width": 4096, "decode_bytes_per_pixel": 6 * 256 * 2, "weight_bytes": 24 * GIB, "act_bytes": 2}
    values.update(overrides)
    return FlowSizes(**values)


def test_the_shipped_generators_sizes_are_read_from_its_configs_and_weights():
    from safetensors.torch import load_file

    from training.grpo.shipped import GENERATORS

    def loaded(*parts):
        return sum(t.numel() for part in parts for path in (folder / part).glob("*.safetensors")
                   for t in load_file(str(path)).values())  # fmt: skip

    folder = GENERATORS["shapes"]
    sizes = flux_folder_sizes(folder, act_bytes=4, text_tokens=40)
    assert (sizes.latent_channels, sizes.vae_scale, sizes.multiple) == (8, 4, 8)
    assert (sizes.hidden, sizes.blocks, sizes.text_width) == (4 * 32, 2 + 3, 128)
    everything = loaded("transformer", "vae", "text_encoder", "text_encoder_2")
    assert parameter_count(folder) == everything and sizes.weight_bytes == 4 * everything
    assert sizes.visiting_bytes == 0
    on_gpu = flux_folder_sizes(folder, act_bytes=2, text_tokens=40, encoders_visit=True)
    assert on_gpu.weight_bytes == 2 * loaded("transformer", "vae")
    assert on_gpu.visiting_bytes == 2 * loaded("text_encoder", "text_encoder_2") > 0


def test_flux_dev_at_1024_rows_and_decodes_are_of_a_plausible_size():
    """FLUX.1-dev's published sizes, bf16: 1024x1024 is 4096 image tokens; a sampling row costs well under a GiB,
    decoding one image about 3 GiB (the full-size dry run, docs/memory_plan.md: 0.19 GiB a 512x512 row with 128
    text tokens, 2.65 GiB for four 512x512 decodes)."""
    sizes = _sizes()
    assert sizes.tokens(1024, 1024) == 4096
    assert 0.19 * GIB <= dataclasses.replace(sizes, text_tokens=128).row_bytes(512, 512, 0) < 0.3 * GIB
    assert 2.65 * GIB <= 4 * sizes.decode_bytes(512, 512) < 3.5 * GIB
    assert 0.5 * GIB < sizes.row_bytes(1024, 1024, 0) < 1.5 * GIB


def test_phases_are_not_added_and_visiting_encoders_count_in_ram():
    """The device holds the weights and the largest phase: sampling the rows, decoding, or the text encoders'
    visit; between visits the encoders are in RAM with the decoded images."""
    sizes = _sizes(weight_bytes=22 * GIB, visiting_bytes=9 * GIB)
    row, decode = sizes.row_bytes(1024, 1024, 29), sizes.decode_bytes(1024, 1024)
    need = sampling_need(sizes, rows=8, height=1024, width=1024, stored_latents=29, decode_rows=4, held_images=8)
    assert need.device == 22 * GIB + max(8 * row, 4 * decode + 8 * 29 * sizes.latent_bytes(1024, 1024), 9 * GIB)
    assert need.host == 8 * 1024 * 1024 * 3 * 4 + 9 * GIB
    one = sampling_need(sizes, rows=1, height=64, width=64, stored_latents=0, decode_rows=4, held_images=1)
    assert one.device == 31 * GIB  # tiny rows: the encoders' visit is the largest phase


def test_largest_finds_the_boundary_and_zero_when_nothing_fits():
    assert largest(lambda k: k * 3 <= 100, 1000) == 33
    assert largest(lambda k: k <= 5, 5) == 5
    assert largest(lambda k: False, 1000) == 0
    assert largest_size(lambda h, w: h * w <= 512 * 512, 4096, 2048, 16) == (720, 352)
    assert largest_size(lambda h, w: False, 1024, 1024, 16) is None


def test_shared_and_separate_pools():
    ram = Free(10 * GIB, 10 * GIB, "RAM")
    assert ram.fits(Need(6 * GIB, 4 * GIB)) and not ram.fits(Need(6 * GIB, 5 * GIB))
    gpu = Free(10 * GIB, 2 * GIB, "cuda:0")
    assert gpu.shortfall(Need(6 * GIB, 1 * GIB)) is None
    assert gpu.shortfall(Need(11 * GIB, 1 * GIB)) == (11 * GIB, 10 * GIB, "cuda:0")
    assert gpu.shortfall(Need(6 * GIB, 3 * GIB)) == (3 * GIB, 2 * GIB, "RAM")


def test_a_count_that_does_not_fit_names_the_largest_that_does():
    free = Free(10 * GIB, 10 * GIB, "RAM")

    def need(n, h, w):
        return Need(2 * GIB + n * h * w * 1000, 0)

    check_fits("n=", 100, 64, 64, need, free, 16)  # 2 GiB + 0.4 GB: fits, no error
    with pytest.raises(MemoryLimitError) as exc:
        check_fits("n=", 100000, 64, 64, need, free, 16)
    most = (8 * GIB) // (64 * 64 * 1000)
    assert str(exc.value) == (f"n=100000 at 64x64 needs about {(2 * GIB + 100000 * 64 * 64 * 1000) / GIB:.1f} GiB, "
                              f"10.0 GiB free in RAM: at most n={most} fits")


def test_when_one_image_does_not_fit_the_largest_size_of_the_same_shape_is_named():
    free = Free(10 * GIB, 10 * GIB, "RAM")

    def need(n, h, w):
        return Need(n * h * w * 1000, 0)

    with pytest.raises(MemoryLimitError) as exc:
        check_fits("--n ", 4, 8192, 4096, need, free, 16)
    assert str(exc.value).endswith(": not even --n 1 fits at 4096x8192; at most 2304x4624 fits at --n 1")
    assert 4624 * 2304 * 1000 <= 10 * GIB < 4640 * 2320 * 1000  # the next size of that shape would not

    with pytest.raises(MemoryLimitError) as exc:
        check_fits("--n ", 1, 8192, 4096, need, free, 16)
    assert str(exc.value).endswith(" free in RAM: at most 2304x4624 fits")
    with pytest.raises(MemoryLimitError, match="the model does not fit even at its smallest size"):
        check_fits("--n ", 1, 64, 64, lambda n, h, w: Need(11 * GIB, 0), free, 16)


@pytest.mark.parametrize("value, words", [
    (7, "--height 7: expected a multiple of 16 (this model's VAE scale 8 x Flux's 2x2 patches), e.g. 16"),
    (1000, "--height 1000: expected a multiple of 16 (this model's VAE scale 8 x Flux's 2x2 patches), e.g. 992"),
    (100000, "--height 100000: at most 8192 pixels a side"),
])  # fmt: skip
def test_sides_the_model_does_not_take(value, words):
    with pytest.raises(ValueError) as exc:
        check_side("--height", value, 16)
    assert str(exc.value) == words
    check_side("--height", 1024, 16)


def test_free_memory_on_the_cpu_is_what_the_kernel_can_give():
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo").read().splitlines())
    total = int(meminfo["MemTotal"].split()[0]) * 1024
    free = free_memory("cpu")
    assert free.where == "RAM" and free.shared
    assert 0 < free.device <= total and free.device == free.host
    assert abs(available_ram() - int(meminfo["MemAvailable"].split()[0]) * 1024) < total // 10


def test_decoder_bytes_follow_the_widest_level(tmp_path):
    """A diffusers decoder's full-resolution level takes the upsampled channels of the level below it."""
    folder = tmp_path / "flux"
    for part, config in (("transformer", {"num_attention_heads": 24, "attention_head_dim": 128, "num_layers": 19,
                                          "num_single_layers": 38, "joint_attention_dim": 4096}),
                         ("vae", {"latent_channels": 16, "block_out_channels": [128, 256, 512, 512]})):
        (folder / part).mkdir(parents=True)
        (folder / part / "config.json").write_text(json.dumps(config))
    sizes = flux_folder_sizes(folder, act_bytes=2, text_tokens=512)
    assert (sizes.vae_scale, sizes.multiple, sizes.hidden, sizes.blocks) == (8, 16, 3072, 57)
    assert sizes.decode_bytes_per_pixel == 6 * 256 * 2 and sizes.weight_bytes == 0
