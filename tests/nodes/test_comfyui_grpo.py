"""GRPO Train against a real ComfyUI (headless, 127.0.0.1, this pack installed), on a CPU with a random-weight
shapes generator (the shipped architecture) and the built-in shapes scorer:

- the GRPO graph runs a few steps through /prompt and writes models/loras/<name>.safetensors (0644, metadata);
- the LoRA is in LoraLoaderModelOnly's choices and applies with no unloaded keys (the server log has no
  "lora key not loaded" / "NOT LOADED" line), in a graph that samples and decodes with it;
- the progress bar moves inside a step, the phase named in the node's status line; /interrupt mid-run leaves the
  last checkpoint's LoRA and the node says which; queueing the same lora_name again says to switch on resume or
  change lora_name, with what is there; resume continues from that checkpoint to the end;
- each impossible setting gets its validation error.

Skipped, with the reason, unless SPATIALSCORE_COMFYUI names a ComfyUI checkout.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from .comfyui_events import EventLog
from .comfyui_harness import ComfyServer, execution_error, find_comfyui

CHECKOUT, PYTHON, REASON = find_comfyui()
pytestmark = [pytest.mark.skipif(CHECKOUT is None, reason=REASON), pytest.mark.slow, pytest.mark.real_parts]
PROMPTS = "a red circle to the left of a blue square\na green triangle above a yellow circle"
STATUS = "spatialscore.grpo.status"


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    from training.grpo.shapes_generator import (
        SAMPLING_FILE,
        GeneratorShape,
        Sampling,
        build_pipeline,
        sampling_record,
    )

    tmp = tmp_path_factory.mktemp("comfyui_grpo")
    generator = tmp / "generator"
    build_pipeline(GeneratorShape(), seed=0).save_pretrained(str(generator))
    (generator / SAMPLING_FILE).write_text(json.dumps(sampling_record(Sampling(), GeneratorShape())))
    with ComfyServer(CHECKOUT, PYTHON, tmp / "base") as server:
        server.generator = str(generator)
        server.object_info = server.get("/object_info")
        yield server
    print(f"\nComfyUI log tail:\n{server.log_tail(20)}")


def grpo_graph(comfy, lora_name, steps=2, resume=False, **overrides):
    widgets = {"prompts": PROMPTS, "steps": steps, "group_size": 4, "top_k": 1, "learning_rate": 1e-3,
               "lora_rank": 4, "lora_alpha": 4.0, "sampling_steps": 3, "noise_level": 0.7, "width": 64,
               "height": 64, "seed": 0, "kl_beta": 0.0, "lora_name": lora_name, "resume": resume}
    widgets.update(overrides)
    return {
        "1": {"class_type": "SpatialScoreShapesGeneratorLoader", "inputs": {"generator": comfy.generator}},
        "2": {"class_type": "SpatialScoreLoader", "inputs": {"scorer": "shapes", "dtype": "fp32", "device": "cpu",
                                                             "keep_loaded": False, "batch_size": 8}},
        "3": {"class_type": "SpatialScoreGRPOTrain",
              "inputs": {"model": ["1", 0], "clip": ["1", 1], "vae": ["1", 2], "scorer": ["2", 0], **widgets}},
    }


def test_grpo_trains_through_fp8_weights(comfy):
    """The shapes generator loaded with weight_dtype fp8_e4m3fn (as UNETLoader stores a MODEL in fp8) trains 2 GRPO
    steps through /prompt; the LoRA is fp32 and its steps are recorded."""
    from safetensors import safe_open

    graph = grpo_graph(comfy, "grpo_fp8")
    graph["1"]["inputs"]["weight_dtype"] = "fp8_e4m3fn"
    entry = run(comfy, graph)
    assert execution_error(entry) is None, execution_error(entry)
    with safe_open(str(comfy.base / "models" / "loras" / "grpo_fp8.safetensors"), framework="pt") as f:
        assert f.metadata()["spatialscore.steps"] == "2"
        tensors = [f.get_tensor(k) for k in f.keys()]
    assert tensors and all(str(t.dtype) == "torch.float32" and t.isfinite().all() for t in tensors)
    metrics = [json.loads(line) for line in (comfy.base / "output" / "spatialscore_grpo" / "grpo_fp8" /
                                              "metrics.jsonl").read_text().splitlines()]  # fmt: skip
    assert [r["step"] for r in metrics if r["step"] > 0] == [1, 2]
    assert "model weight dtype torch.float8_e4m3fn, manual cast: torch.float32" in comfy.log_path.read_text(
        errors="replace")  # ComfyUI's own log line: the MODEL really is stored in fp8


def test_grpo_trains_with_the_nft_algorithm(comfy):
    """algorithm nft (DiffusionNFT) trains 2 steps through /prompt: finite LoRA, the run's config says nft, and its
    records carry no log-prob ratio (1 everywhere)."""
    from safetensors import safe_open

    entry = run(comfy, grpo_graph(comfy, "grpo_nft", algorithm="nft"))
    assert execution_error(entry) is None, execution_error(entry)
    with safe_open(str(comfy.base / "models" / "loras" / "grpo_nft.safetensors"), framework="pt") as f:
        assert f.metadata()["spatialscore.steps"] == "2"
        tensors = [f.get_tensor(k) for k in f.keys()]
    assert tensors and all(t.isfinite().all() for t in tensors)
    assert any(t.abs().max() > 0 for t in tensors)
    run_dir = comfy.base / "output" / "spatialscore_grpo" / "grpo_nft"
    assert json.loads((run_dir / "config.json").read_text())["train"]["algorithm"] == "nft"
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in metrics if r["step"] > 0]
    assert [r["step"] for r in trained] == [1, 2] and all(r["ratio_mean"] == 1.0 for r in trained)


def run(comfy, prompt, timeout=900):
    code, body = comfy.queue(prompt)
    assert code == 200 and not body.get("node_errors"), body
    return comfy.wait(body["prompt_id"], timeout)


def test_grpo_runs_and_its_lora_applies(comfy):
    from safetensors import safe_open

    entry = run(comfy, grpo_graph(comfy, "grpo_test"))
    assert execution_error(entry) is None, execution_error(entry)
    lora = comfy.base / "models" / "loras" / "grpo_test.safetensors"
    assert lora.is_file()
    assert (os.stat(lora).st_mode & 0o777) == 0o644
    with safe_open(str(lora), framework="pt") as f:
        meta = f.metadata()
        keys = list(f.keys())
    assert meta["spatialscore.steps"] == "2" and meta["spatialscore.final_reward"]
    assert meta["spatialscore.prompts_sha256_16"] and "shapes" in meta["spatialscore.scorer"]
    assert all(k.startswith("transformer.") and ".lora_" in k for k in keys)
    metrics = [json.loads(line) for line in (comfy.base / "output" / "spatialscore_grpo" / "grpo_test" /
                                              "metrics.jsonl").read_text().splitlines()]  # fmt: skip
    assert [r["step"] for r in metrics if r["step"] > 0] == [1, 2]
    ui = entry["outputs"]["3"]
    assert [p["step"] for p in ui["spatialscore_grpo"] if "mean" in p] == [1, 2]

    choices = comfy.get("/object_info/LoraLoaderModelOnly")["LoraLoaderModelOnly"]["input"]["required"]["lora_name"]
    assert "grpo_test.safetensors" in choices[0]
    apply = {
        "1": {"class_type": "SpatialScoreShapesGeneratorLoader", "inputs": {"generator": comfy.generator}},
        "2": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": "grpo_test.safetensors",
                                                              "strength_model": 1.0}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a red circle"}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["2", 0], "positive": ["3", 0], "negative": ["3", 0],
                                                   "latent_image": ["4", 0], "seed": 0, "steps": 2, "cfg": 1.0,
                                                   "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["6", 0]}},
    }
    before = comfy.log_path.read_text(errors="replace")
    entry = run(comfy, apply)
    assert execution_error(entry) is None, execution_error(entry)
    log = comfy.log_path.read_text(errors="replace")[len(before):]
    assert "lora key not loaded" not in log and "NOT LOADED" not in log, log[-3000:]


def statuses(events, kind):
    return [m["data"]["text"] for m in events.messages(STATUS) if m["data"]["node"] == "3" and m["data"]["kind"] == kind]


def test_interrupt_then_resume(comfy):
    run_dir = comfy.base / "output" / "spatialscore_grpo" / "grpo_resume"
    with EventLog(comfy) as events:
        code, body = comfy.queue(grpo_graph(comfy, "grpo_resume", steps=5))
        assert code == 200, body
        deadline = time.monotonic() + 600
        while not (run_dir / "checkpoints" / "step_000001").is_dir():
            assert time.monotonic() < deadline, comfy.log_tail()
            time.sleep(0.5)
        comfy.post("/interrupt", {})
        entry = comfy.wait(body["prompt_id"], 600)
        assert entry["status"]["status_str"] == "error"
        assert any(kind == "execution_interrupted" for kind, _ in entry["status"]["messages"])
        steps_done = max(int(p.name.split("_")[1]) for p in (run_dir / "checkpoints").iterdir()
                         if p.name.startswith("step_"))  # fmt: skip
        assert steps_done < 5
        assert (comfy.base / "models" / "loras" / "grpo_resume.safetensors").is_file()  # the last complete one

        # inside step 1 the bar moved and the node named each phase (G = 4 sampled in one batch, 2 kept)
        bar = [m["data"]["value"] for m in events.messages("progress") if m["data"]["node"] == "3"]
        assert bar == sorted(bar) and any(0 < value < 300 for value in bar), bar
        assert {m["data"]["max"] for m in events.messages("progress") if m["data"]["node"] == "3"} == {5 * 300}
        phases = statuses(events, "phase")
        for line in ("before step 1: evaluation 0/2 eval prompts", "step 1/5: sampling 0/4 images",
                     "step 1/5: sampling 4/4 images", "step 1/5: scoring 0/4 images", "step 1/5: training 0/2 kept "
                     "samples", "step 1/5: training 2/2 kept samples"):  # fmt: skip
            assert line in phases, phases
        # Cancel says on the node which step's LoRA it saved, and where
        events.wait_for(lambda m: m["type"] == STATUS and m["data"]["kind"] == "saved", 30, "the Cancel status")
        assert statuses(events, "saved") == [
            f"Cancelled: saved models/loras/grpo_resume.safetensors, the LoRA of step {steps_done} of 5 (checkpoint "
            f"step_{steps_done:06d}); switch on resume to continue from there"]  # fmt: skip

        # queued again as it is: one line in the graph's terms (resume, lora_name) saying what is there
        entry = run(comfy, grpo_graph(comfy, "grpo_resume", steps=5))
        err = execution_error(entry)
        assert err is not None and err["node_type"] == "SpatialScoreGRPOTrain", entry["status"]
        message = err["exception_message"].strip()
        assert message.startswith(f"lora_name 'grpo_resume' already has a run ({steps_done} of 5 steps done, last "
                                  "reward ") and message.endswith("switch on resume to continue it, or change "
                                                                  "lora_name to start a new one"), message  # fmt: skip
        assert "--resume" not in message and "\n" not in message
        assert events.wait_for(lambda m: m["type"] == STATUS and m["data"]["kind"] == "problem", 30)["data"]["text"] \
            == message

    entry = run(comfy, grpo_graph(comfy, "grpo_resume", steps=5, resume=True))
    assert execution_error(entry) is None, execution_error(entry)
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 5
    assert f"resumed from {run_dir / 'checkpoints'}" in comfy.log_path.read_text(errors="replace")
    assert entry["outputs"]["3"]["text"][0].startswith("Saved models/loras/grpo_resume.safetensors after 5 steps, "
                                                       "last reward ")  # fmt: skip


@pytest.mark.parametrize("overrides, expected", [
    ({"top_k": 3}, "top_k"),
    ({"prompts": "  \n"}, "prompts"),
    ({"group_size": 1}, "group_size"),
    ({"width": 72}, "width"),
    ({"lora_name": "../evil"}, "lora_name"),
])
def test_bad_inputs_fail_validation(comfy, overrides, expected):
    overrides = dict(overrides)
    code, body = comfy.queue(grpo_graph(comfy, overrides.pop("lora_name", "grpo_bad"), **overrides))
    assert code == 400, body
    assert expected in json.dumps(body.get("node_errors", {})), body


def test_the_shapes_example_workflow_runs_as_shipped_with_fewer_steps(comfy):
    """workflows/spatialscore_shapes_grpo.json through /prompt on the shipped generator, with only its step count
    and group made small: GRPO trains, its MODEL output draws the after picture, the before/after pair is saved."""
    from pathlib import Path

    from .comfyui_harness import ui_to_api

    workflow = json.loads((Path(__file__).resolve().parents[2] / "workflows/spatialscore_shapes_grpo.json").read_text())
    prompt = ui_to_api(workflow, comfy.object_info)
    grpo_id = next(k for k, v in prompt.items() if v["class_type"] == "SpatialScoreGRPOTrain")
    prompt[grpo_id]["inputs"].update(steps=2, group_size=4, top_k=1, lora_name="example_workflow_small")
    entry = run(comfy, prompt)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    saved = [img for out in entry["outputs"].values() for img in out.get("images", []) if img["type"] == "output"]
    assert any("grpo_before_after" in img["filename"] for img in saved), saved
    assert (comfy.base / "models" / "loras" / "example_workflow_small.safetensors").is_file()


def test_a_saved_workflow_with_width_beyond_the_widget_is_refused_with_one_message(comfy):
    """The shipped shapes example with width = 100000 (the widget's max is 2048; ComfyUI does not check it for an
    input that validate_inputs takes): refused at /prompt with one message, and the server stays up."""
    from pathlib import Path

    from .comfyui_harness import refused_once, ui_to_api

    workflow = json.loads((Path(__file__).resolve().parents[2] / "workflows/spatialscore_shapes_grpo.json").read_text())
    prompt = ui_to_api(workflow, comfy.object_info)
    node = next(k for k, v in prompt.items() if v["class_type"] == "SpatialScoreGRPOTrain")
    prompt[node]["inputs"].update(width=100000, lora_name="too_wide")
    code, body = comfy.queue(prompt)
    assert code == 400, body
    refused_once(comfy, body, node, "width: 100000 is above its maximum 2048")
    assert not (comfy.base / "output" / "spatialscore_grpo" / "too_wide").exists()
