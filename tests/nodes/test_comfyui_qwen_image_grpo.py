"""GRPO Train on a Qwen-Image MODEL in a real ComfyUI (headless, 127.0.0.1, this pack installed), on a CPU: a tiny
random Qwen-Image (ComfyUI's own QwenImage model class, tests/nodes/tiny_qwen_image_comfy.py, loaded by a test-only
node) trains 2 GRPO steps with true CFG through /prompt against the built-in shapes scorer; the LoRA it writes has
the diffusers Qwen-Image keys and LoraLoaderModelOnly applies it to every adapted weight with no "lora key not
loaded" line in the server log.

Skipped, with the reason, unless SPATIALSCORE_COMFYUI names a ComfyUI checkout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .comfyui_harness import ComfyServer, execution_error, find_comfyui

CHECKOUT, PYTHON, REASON = find_comfyui()
pytestmark = [pytest.mark.skipif(CHECKOUT is None, reason=REASON), pytest.mark.slow, pytest.mark.real_parts]
NODE = Path(__file__).parent / "fixtures" / "tiny_qwen_image_node"
PROMPTS = "a red circle to the left of a blue square\na green triangle above a yellow circle"


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    from training.common.tiny_qwen_image import save_tiny_qwen_image_pipeline

    tmp = tmp_path_factory.mktemp("comfyui_qwen_image")
    folder = save_tiny_qwen_image_pipeline(tmp / "qwen_image", seed=0)
    base = tmp / "base"
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / NODE.name).symlink_to(NODE, target_is_directory=True)
    with ComfyServer(CHECKOUT, PYTHON, base) as server:
        server.folder = str(folder)
        yield server
    print(f"\nComfyUI log tail:\n{server.log_tail(20)}")


def run(comfy, prompt, timeout=900):
    code, body = comfy.queue(prompt)
    assert code == 200 and not body.get("node_errors"), body
    return comfy.wait(body["prompt_id"], timeout)


def test_qwen_image_grpo_trains_and_its_lora_applies(comfy):
    from safetensors import safe_open

    widgets = {"prompts": PROMPTS, "steps": 2, "group_size": 4, "top_k": 1, "learning_rate": 1e-3, "lora_rank": 4,
               "lora_alpha": 4.0, "sampling_steps": 3, "noise_level": 0.7, "width": 64, "height": 64, "seed": 0,
               "kl_beta": 0.0, "lora_name": "qwen_grpo", "resume": False}  # fmt: skip
    graph = {
        "1": {"class_type": "TinyQwenImageLoader", "inputs": {"folder": comfy.folder}},
        "2": {"class_type": "SpatialScoreLoader", "inputs": {"scorer": "shapes", "dtype": "fp32", "device": "cpu",
                                                             "keep_loaded": False, "batch_size": 8}},
        "3": {"class_type": "SpatialScoreGRPOTrain",
              "inputs": {"model": ["1", 0], "clip": ["1", 1], "vae": ["1", 2], "scorer": ["2", 0], **widgets}},
    }
    entry = run(comfy, graph)
    assert execution_error(entry) is None, execution_error(entry)
    lora = comfy.base / "models" / "loras" / "qwen_grpo.safetensors"
    with safe_open(str(lora), framework="pt") as f:
        keys = list(f.keys())
        assert f.metadata()["spatialscore.steps"] == "2"
        assert all(f.get_tensor(k).isfinite().all() for k in keys)
    assert len(keys) == 2 * 2 * 12 and all(k.startswith("transformer.transformer_blocks.") for k in keys)
    run_dir = comfy.base / "output" / "spatialscore_grpo" / "qwen_grpo"
    config = json.loads((run_dir / "config.json").read_text())
    assert "img_mlp.net.0.proj" in config["lora"]["targets"] and config["sample"]["guidance"] > 1  # true CFG on
    assert [r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["step"]] == [1, 2]

    apply = {
        "1": {"class_type": "TinyQwenImageLoader", "inputs": {"folder": comfy.folder}},
        "2": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": "qwen_grpo.safetensors",
                                                              "strength_model": 1.0}},
        "3": {"class_type": "TinyModelPatches", "inputs": {"model": ["2", 0]}},
    }
    entry = run(comfy, apply)
    assert execution_error(entry) is None, execution_error(entry)
    assert entry["outputs"]["3"]["patched"] == [2 * 12] and entry["outputs"]["3"]["class"] == ["QwenImage"]
    log = comfy.log_path.read_text(errors="replace")
    assert "lora key not loaded" not in log and "NOT LOADED" not in log
