"""`python -m benchmarks.dryrun grpo --shape tiny-qwen-image`: the Qwen-Image GRPO step (QwenImagePolicy, true CFG,
the qwen_image_spatial preset) runs on fake tensors, and its plans add the 141 GB card and 8 x 80 GB with FSDP."""

import json

from benchmarks.dryrun.__main__ import main
from benchmarks.dryrun.measure import GIB, Phase
from benchmarks.dryrun.qwen_image import fsdp_phases


def test_tiny_qwen_image_step_and_plans(tmp_path, capsys):
    out = tmp_path / "qwen.json"
    assert main(["grpo", "--shape", "tiny-qwen-image", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Qwen2.5-VL of 8 prompts" in text and "8 x 80 GB FSDP" in text and "1 x 141 GB" in text
    result = json.loads(out.read_text())
    assert [p["name"] for p in result["phases"]] == ["encode", "sampling", "decode", "reward", "training"]
    assert result["tflop_per_group"] > 0
    plans = result["plans"]
    single = plans["1 x 80 GB, text encoder + scorer offloaded"]
    sharded = plans["8 x 80 GB FSDP, text encoder + scorer offloaded"]
    assert sharded["peak_gib"] <= single["peak_gib"] and sharded["cards"] == 8
    assert abs(8 * sharded["predicted_step_s"] - single["predicted_step_s"]) < 0.05  # 1/8 of the step a card


def test_fsdp_shards_only_the_frozen_base():
    """41 GB of transformer (1 GB of it LoRA) over 8 cards with 60 blocks: each card keeps 1/8 of the base and two
    gathered blocks; the LoRA, its gradients and AdamW state and the activations stay whole."""
    phase = Phase("training", {"Parameter": 41 * GIB, "Gradient": 1 * GIB, "Optstate": 2 * GIB, "Activation": 20 * GIB},
                  1e12, 8, 0.0, "", {"transformer": 41 * GIB})
    (sharded,) = fsdp_phases([phase], 41 * GIB, 1 * GIB, num_blocks=60, world=8)
    base = 40 * GIB
    assert abs(sharded.by_kind["Parameter"] - (1 * GIB + base / 8 + 2 * base / 60)) < 1
    assert sharded.by_kind["Gradient"] == 1 * GIB and sharded.by_kind["Optstate"] == 2 * GIB
    assert sharded.by_kind["Activation"] == 20 * GIB and sharded.repeat == 1
