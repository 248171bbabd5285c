"""GRPO Train on an SD3.5 MODEL in a real ComfyUI (headless, 127.0.0.1, this pack installed), on a CPU: a tiny
SD3.5-like transformer (tests/nodes/tiny_flow_comfy.py), saved in diffusers format and loaded by ComfyUI's stock
Load Diffusion Model (UNETLoader), trains 2 GRPO steps with true CFG through /prompt against the built-in shapes
scorer (CLIP and VAE: stand-ins from a test-only node); the LoRA it writes has the diffusers SD3 keys, and
LoraLoaderModelOnly applies it to every adapted weight with no "lora key not loaded" line in the server log.

Skipped, with the reason, unless SPATIALSCORE_COMFYUI names a ComfyUI checkout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .comfyui_harness import ComfyServer, execution_error, find_comfyui

CHECKOUT, PYTHON, REASON = find_comfyui()
pytestmark = [pytest.mark.skipif(CHECKOUT is None, reason=REASON), pytest.mark.slow, pytest.mark.real_parts]
NODE = Path(__file__).parent / "fixtures" / "tiny_flow_parts_node"
PROMPTS = "a red circle to the left of a blue square\na green triangle above a yellow circle"


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    from safetensors.torch import save_file

    from .tiny_flow_comfy import tiny_sd3_transformer

    base = tmp_path_factory.mktemp("comfyui_sd3")
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / NODE.name).symlink_to(NODE, target_is_directory=True)
    (base / "models" / "diffusion_models").mkdir(parents=True)
    state = {k: v.contiguous() for k, v in tiny_sd3_transformer(seed=0).state_dict().items()}
    save_file(state, str(base / "models" / "diffusion_models" / "tiny_sd3.safetensors"))
    with ComfyServer(CHECKOUT, PYTHON, base) as server:
        yield server
    print(f"\nComfyUI log tail:\n{server.log_tail(20)}")


def run(comfy, prompt, timeout=900):
    code, body = comfy.queue(prompt)
    assert code == 200 and not body.get("node_errors"), body
    return comfy.wait(body["prompt_id"], timeout)


def test_sd3_grpo_trains_and_its_lora_applies(comfy):
    from safetensors import safe_open

    from .tiny_flow_comfy import SD3_POOLED, SD3_TEXT

    model = {"class_type": "UNETLoader", "inputs": {"unet_name": "tiny_sd3.safetensors", "weight_dtype": "default"}}
    parts = {"class_type": "TinyClipAndVae", "inputs": {"text_width": SD3_TEXT, "pooled_width": SD3_POOLED}}
    widgets = {"prompts": PROMPTS, "steps": 2, "group_size": 4, "top_k": 1, "learning_rate": 1e-3, "lora_rank": 4,
               "lora_alpha": 4.0, "sampling_steps": 3, "noise_level": 0.7, "width": 64, "height": 64, "seed": 0,
               "kl_beta": 0.0, "lora_name": "sd3_grpo", "resume": False}  # fmt: skip
    graph = {
        "1": model, "4": parts,
        "2": {"class_type": "SpatialScoreLoader", "inputs": {"scorer": "shapes", "dtype": "fp32", "device": "cpu",
                                                             "keep_loaded": False, "batch_size": 8}},
        "3": {"class_type": "SpatialScoreGRPOTrain",
              "inputs": {"model": ["1", 0], "clip": ["4", 0], "vae": ["4", 1], "scorer": ["2", 0], **widgets}},
    }  # fmt: skip
    entry = run(comfy, graph)
    assert execution_error(entry) is None, execution_error(entry)
    lora = comfy.base / "models" / "loras" / "sd3_grpo.safetensors"
    with safe_open(str(lora), framework="pt") as f:
        keys = list(f.keys())
        assert f.metadata()["spatialscore.steps"] == "2"
        assert all(f.get_tensor(k).isfinite().all() for k in keys)
    # 12 modules in the first block, 9 in the last (no text output), lora_A and lora_B each
    assert len(keys) == 2 * (12 + 9) and all(k.startswith("transformer.transformer_blocks.") for k in keys)
    assert "transformer.transformer_blocks.0.attn.to_v.lora_B.weight" in keys
    run_dir = comfy.base / "output" / "spatialscore_grpo" / "sd3_grpo"
    config = json.loads((run_dir / "config.json").read_text())
    assert "ff_context.net.0.proj" in config["lora"]["targets"] and config["sample"]["guidance"] > 1  # true CFG on
    assert [r["step"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["step"]] == [1, 2]

    apply = {
        "1": model,
        "2": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": "sd3_grpo.safetensors",
                                                              "strength_model": 1.0}},
        "3": {"class_type": "TinyFlowModelPatches", "inputs": {"model": ["2", 0]}},
    }
    entry = run(comfy, apply)
    assert execution_error(entry) is None, execution_error(entry)
    assert entry["outputs"]["3"]["patched"] == [8 + 5] and entry["outputs"]["3"]["class"] == ["SD3"]
    log = comfy.log_path.read_text(errors="replace")
    assert "lora key not loaded" not in log and "NOT LOADED" not in log
