"""SpatialScore Evaluate in a real ComfyUI (headless, 127.0.0.1, this pack installed), on the shipped shapes
generator with and without the shipped `shapes-grpo` LoRA and the built-in shapes scorer, through /prompt:

- the node reports the LoRA's win rate with its interval in its UI record (what the badge draws), the text and the
  report folder; its scores and oracle figures are the command line's for the same prompts and seed, up to the
  float differences of ComfyUI's Flux (the GRPO node's policy: 1e-4 on velocities);
- the same LoRA applied by LoraLoaderModelOnly (model_with_lora) scores like the LoRA by name;
- the shapes scorer on GenEval, a LoRA for another model and nothing to compare are refused with one line;
- the example workflow runs as it ships.

Skipped, with the reason, unless SPATIALSCORE_COMFYUI names a ComfyUI checkout.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from .comfyui_harness import ComfyServer, execution_error, find_comfyui, ui_to_api

CHECKOUT, PYTHON, REASON = find_comfyui()
pytestmark = [pytest.mark.skipif(CHECKOUT is None, reason=REASON), pytest.mark.slow, pytest.mark.real_parts]
ROOT = Path(__file__).resolve().parents[2]
NODE = "SpatialScoreEvaluate"
PROMPTS = 12


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    import torch
    from safetensors.torch import save_file

    from training.grpo.shipped import LORAS

    base = tmp_path_factory.mktemp("comfyui_evaluate") / "base"
    loras = base / "models" / "loras"
    loras.mkdir(parents=True)
    shutil.copy(LORAS["shapes-grpo"], loras / "shapes_grpo_copy.safetensors")
    # FLUX.1-dev's block 18: no such block in the 2-block shapes generator
    save_file({"transformer.transformer_blocks.18.attn.to_q.lora_A.weight": torch.zeros(4, 3072),
               "transformer.transformer_blocks.18.attn.to_q.lora_B.weight": torch.zeros(3072, 4)},
              str(loras / "flux_dev_lora.safetensors"))  # fmt: skip
    with ComfyServer(CHECKOUT, PYTHON, base) as server:
        server.object_info = server.get("/object_info")
        yield server
    print(f"\nComfyUI log tail:\n{server.log_tail(20)}")


def graph(lora_name="shapes-grpo", with_loader=False, **overrides):
    widgets = {"prompt_set": "shapes-heldout", "custom_prompts": "", "num_prompts": PROMPTS, "images_per_prompt": 1,
               "seed": 0, "steps": 6, "guidance": 0.0, "width": 64, "height": 64, "lora_name": lora_name}
    widgets.update(overrides)
    prompt = {
        "1": {"class_type": "SpatialScoreShapesGeneratorLoader", "inputs": {"generator": "shapes"}},
        "2": {"class_type": "SpatialScoreLoader", "inputs": {"scorer": "shapes", "dtype": "auto", "device": "auto",
                                                             "keep_loaded": False, "batch_size": 16}},
        "3": {"class_type": NODE, "inputs": {"model": ["1", 0], "clip": ["1", 1], "vae": ["1", 2], "scorer": ["2", 0],
                                             **widgets}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 1], "filename_prefix": "evaluate/grid"}},
    }  # fmt: skip
    if with_loader:
        prompt["5"] = {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "strength_model": 1.0,
                                                                       "lora_name": "shapes_grpo_copy.safetensors"}}
        prompt["3"]["inputs"]["model_with_lora"] = ["5", 0]
    return prompt


def run(comfy, prompt, timeout=900):
    code, body = comfy.queue(prompt)
    assert code == 200 and not body.get("node_errors"), body
    return comfy.wait(body["prompt_id"], timeout)


def report_of(comfy, entry) -> dict:
    line = entry["outputs"]["3"]["text"][0]
    folder = line.split("report: output/", 1)[1].rsplit("/report.md", 1)[0]
    return json.loads((comfy.base / "output" / folder / "report.json").read_text())


@pytest.fixture(scope="module")
def by_name(comfy):
    started = time.monotonic()
    entry = run(comfy, graph())
    assert execution_error(entry) is None, execution_error(entry)
    print(f"\nEvaluate, {PROMPTS} prompts x 2 variants in ComfyUI: {time.monotonic() - started:.1f} s")
    return entry


def test_node_is_listed_with_tooltips(comfy):
    info = comfy.object_info[NODE]
    assert info["output_node"] and info["output_name"] == ["report", "gains_losses"]
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            assert spec[1].get("tooltip"), name
    options = set(info["input"]["required"]["lora_name"][1]["options"])
    assert {"shapes-grpo", "shapes-fast", "shapes_grpo_copy.safetensors"} <= options


def test_win_rate_badge_text_and_report_match_the_command_line(comfy, by_name, tmp_path):
    from training.grpo.evaluate.__main__ import main

    badge = by_name["outputs"]["3"]["spatialscore_evaluate"][0]
    print(f"badge: {badge}")
    assert badge["label"] == "shapes-grpo vs base" and badge["prompts"] == PROMPTS
    assert 0 <= badge["low"] <= badge["win_rate"] <= badge["high"] <= 1 and "oracle" in badge
    text = by_name["outputs"]["3"]["text"][0]
    assert text.startswith("shapes-grpo beats base on") and "report: output/spatialscore_evaluate/eval_" in text
    node = report_of(comfy, by_name)
    assert sorted(p.name for p in (comfy.base / "output" / "evaluate").glob("grid*.png"))
    assert main(["--model", "shapes", "--lora", "shapes-grpo", "--bench", "shapes-heldout", "--limit", str(PROMPTS),
                 "--out", str(tmp_path / "cli")]) == 0  # fmt: skip
    cli = json.loads((tmp_path / "cli" / "report.json").read_text())
    for name in ("base", "shapes-grpo"):
        node_scores = np.array([r["scores"][name] for r in node["per_prompt"]])
        cli_scores = np.array([r["scores"][name] for r in cli["per_prompt"]])
        print(f"{name}: largest score difference node - CLI {np.abs(node_scores - cli_scores).max():.2e}; oracle "
              f"(c) node {node['per_variant'][name]['oracle']['oracle_all_ok']:.3f} CLI "
              f"{cli['per_variant'][name]['oracle']['oracle_all_ok']:.3f}")  # fmt: skip
        np.testing.assert_allclose(node_scores, cli_scores, atol=0.05)
    assert [r["prompt"] for r in node["per_prompt"]] == [r["prompt"] for r in cli["per_prompt"]]


def test_the_lora_through_lora_loader_scores_like_the_lora_by_name(comfy, by_name):
    entry = run(comfy, graph(lora_name="none", with_loader=True))
    assert execution_error(entry) is None, execution_error(entry)
    loaded, named = report_of(comfy, entry), report_of(comfy, by_name)
    assert loaded["variants"] == ["base", "model_with_lora"]
    for name, other in (("base", "base"), ("model_with_lora", "shapes-grpo")):
        a = np.array([r["scores"][name] for r in loaded["per_prompt"]])
        b = np.array([r["scores"][other] for r in named["per_prompt"]])
        np.testing.assert_allclose(a, b, atol=0.05)


@pytest.mark.parametrize("overrides, message", [
    ({"prompt_set": "geneval-position"}, "cannot judge this prompt set: 12 of 12 prompts have words it does not know"),
    ({"lora_name": "flux_dev_lora.safetensors"}, "made for another model"),
    ({"lora_name": "none"}, "nothing to compare"),
])  # fmt: skip
def test_what_cannot_be_judged_is_refused_with_one_line(comfy, overrides, message):
    started = time.monotonic()
    entry = run(comfy, graph(**overrides))
    error = execution_error(entry)
    assert error is not None and message in error["exception_message"], error
    assert "\n" not in error["exception_message"].strip()
    assert time.monotonic() - started < 120  # refused before sampling


def test_validation_names_the_input(comfy):
    code, body = comfy.queue(graph(images_per_prompt=100000, width=72))
    assert code == 400, body
    text = json.dumps(body)
    assert "images_per_prompt: 100000" in text and "width: 72 is not a multiple of 16" in text


def test_the_example_workflow_runs_as_it_ships(comfy):
    workflow = json.loads((ROOT / "workflows" / "spatialscore_evaluate_shapes.json").read_text())
    prompt = ui_to_api(workflow, comfy.object_info)
    evaluate = next(v for v in prompt.values() if v["class_type"] == NODE)
    assert evaluate["inputs"]["lora_name"] == "shapes-grpo" and evaluate["inputs"]["prompt_set"] == "shapes-heldout"
    entry = run(comfy, prompt, timeout=1800)
    assert execution_error(entry) is None, execution_error(entry)
    badge = next(o["spatialscore_evaluate"][0] for o in entry["outputs"].values() if "spatialscore_evaluate" in o)
    print(f"example workflow badge: {badge}")
    assert badge["win_rate"] > 0.5
