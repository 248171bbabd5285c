"""SpatialScore Best-of-N Sampler in a real ComfyUI (headless, 127.0.0.1, this pack installed), on the shipped shapes
generator (SpatialScoreShapesGeneratorLoader) and the built-in shapes scorer, through /prompt:

- the node is listed with a tooltip on every input;
- a pruned run returns the top K images best first with badges, its latents, scores and a JSON report whose
  forward count is the schedule's;
- with schedule none, in the same graph as KSampler (batch of N, same seed) -> VAEDecode -> Rerank, it keeps the
  same candidates with the same scores;
- Cancel (/interrupt) stops a long run; impossible settings are validation errors naming the input.

Skipped, with the reason, unless SPATIALSCORE_COMFYUI names a ComfyUI checkout.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from .comfyui_harness import ComfyServer, execution_error, find_comfyui, refused_once

CHECKOUT, PYTHON, REASON = find_comfyui()
pytestmark = [pytest.mark.skipif(CHECKOUT is None, reason=REASON), pytest.mark.slow, pytest.mark.real_parts]
PROMPT = "a red circle to the left of a blue square, and the blue square above a green triangle"
NODE = "SpatialScoreBestOfNSampler"


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    with ComfyServer(CHECKOUT, PYTHON, tmp_path_factory.mktemp("comfyui_bestofn") / "base") as server:
        server.object_info = server.get("/object_info")
        yield server
    print(f"\nComfyUI log tail:\n{server.log_tail(20)}")


def graph(**overrides):
    widgets = {"prompt": PROMPT, "n": 8, "keep": 2, "schedule": "4@0.34", "sampler_name": "euler",
               "scheduler": "simple", "steps": 6, "cfg": 1.0, "seed": 5, "width": 64, "height": 64}
    widgets.update(overrides)
    return {
        "1": {"class_type": "SpatialScoreShapesGeneratorLoader", "inputs": {"generator": "shapes"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": PROMPT}},
        "3": {"class_type": "SpatialScoreLoader", "inputs": {"scorer": "shapes", "dtype": "auto", "device": "auto",
                                                             "keep_loaded": True, "batch_size": 16}},
        "4": {"class_type": NODE, "inputs": {"model": ["1", 0], "positive": ["2", 0], "vae": ["1", 2],
                                             "scorer": ["3", 0], **widgets}},
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "bon/top"}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["4", 4]}},
        "7": {"class_type": "SaveLatent", "inputs": {"samples": ["4", 1], "filename_prefix": "bon/latent"}},
    }


def run(comfy, prompt, timeout=600):
    code, body = comfy.queue(prompt)
    assert code == 200 and not body.get("node_errors"), body
    return comfy.wait(body["prompt_id"], timeout)


def test_node_is_listed_with_tooltips(comfy):
    info = comfy.object_info[NODE]
    for section in ("required", "optional"):
        for name, spec in info["input"].get(section, {}).items():
            assert spec[1].get("tooltip"), f"{name} has no tooltip"
    assert "negative" in info["input"]["optional"]
    assert info["output_name"] == ["images", "latent", "scores", "candidates", "report"]
    assert info["output_is_list"] == [False, False, True, True, False] and info["output_node"]


def test_pruned_run_returns_the_top_k_with_badges_and_a_report(comfy):
    entry = run(comfy, graph())
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    out = entry["outputs"]
    rows = out["4"]["spatialscore"]
    means = [r["mean"] for r in rows]
    assert len(rows) == 2 and means == sorted(means, reverse=True) and np.isfinite(means).all()
    report = json.loads(out["6"]["text"][0])
    assert report["transformer_forwards"] == 8 * 2 + 4 * 4 and report["full_forwards"] == 8 * 6
    assert report["decodes"] == report["scores"] == 8 + 4
    assert len(report["dropped"]) == 4 and {d["step"] for d in report["dropped"]} == {2}
    assert len(report["survivors"]) == 4 and {d["candidate"] for d in report["dropped"]}.isdisjoint(report["survivors"])
    assert [k["candidate"] for k in report["kept"]] == [r["index"] for r in rows]
    assert [k["score"] for k in report["kept"]] == pytest.approx(means, abs=1e-6)
    text = out["4"]["text"][0]
    assert "32 model forwards (48 without pruning)" in text and text.count("dropped candidate") == 4
    saved = out["5"]["images"]
    assert len(saved) == 2
    from PIL import Image

    with Image.open(comfy.base / "output" / saved[0]["subfolder"] / saved[0]["filename"]) as im:
        assert im.size == (64, 64)
    latents = list((comfy.base / "output" / "bon").glob("latent*.latent"))
    assert latents



def test_a_prompt_the_scorer_cannot_read_heads_the_text_and_flags_the_badges(comfy):
    prompt = graph(prompt="a cat on a sofa", n=4, keep=2, schedule="none")
    del prompt["6"], prompt["7"]
    entry = run(comfy, prompt)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    out = entry["outputs"]["4"]
    assert out["text"][0].splitlines()[0].startswith("warning (every image): the prompt has words the shapes scorer "
                                                     "does not know (cat")  # fmt: skip
    rows = out["spatialscore"]
    assert len(rows) == 2 and all(r["flag"] == "unknown words" for r in rows), rows

def test_schedule_none_equals_ksampler_batch_then_rerank(comfy):
    prompt = graph(schedule="none", n=6, keep=3)
    del prompt["6"], prompt["7"]
    prompt.update({
        "10": {"class_type": "EmptyLatentImage", "inputs": {"width": 128, "height": 128, "batch_size": 6}},
        "11": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["2", 0],
                                                    "latent_image": ["10", 0], "seed": 5, "steps": 6, "cfg": 1.0,
                                                    "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}},
        "12": {"class_type": "VAEDecode", "inputs": {"samples": ["11", 0], "vae": ["1", 2]}},
        "13": {"class_type": "SpatialScoreRerank", "inputs": {
            "scorer": ["3", 0], "images": ["12", 0], "prompt": PROMPT, "prompt_mode": "auto", "top_k": 3,
            "rank_by": "mean", "risk_lambda": 1.0}},
    })  # fmt: skip
    # EmptyLatentImage is 4 channels at 1/8: KSampler widens it to the shapes VAE's 8 channels at 1/4 (64 px)
    entry = run(comfy, prompt)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    ours, theirs = entry["outputs"]["4"]["spatialscore"], entry["outputs"]["13"]["spatialscore"]
    assert [r["index"] for r in ours] == [r["index"] for r in theirs]
    assert [r["mean"] for r in ours] == pytest.approx([r["mean"] for r in theirs], abs=1e-5)


def test_cancel_stops_a_long_run(comfy):
    code, body = comfy.queue(graph(n=64, keep=1, steps=400, schedule="32@0.9"))
    assert code == 200, body
    deadline = time.monotonic() + 120
    while not comfy.get("/queue").get("queue_running"):
        assert time.monotonic() < deadline, comfy.log_tail()
        time.sleep(0.2)
    time.sleep(4.0)  # loading done, sampling under way (the run takes minutes)
    started = time.monotonic()
    comfy.post("/interrupt", {})
    entry = comfy.wait(body["prompt_id"], 120)
    assert entry["status"]["status_str"] == "error"
    assert any(kind == "execution_interrupted" for kind, _ in entry["status"]["messages"])
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("overrides, expected", [
    ({"keep": 9}, "keep 9 is more than n 8"),
    ({"schedule": "8@0.5"}, "does not shrink"),
    ({"schedule": "4@1.2"}, "outside (0, 1)"),
    ({"schedule": "1@0.5"}, "fewer candidates than keep 2"),
    ({"sampler_name": "no_such_sampler"}, "sampler_name"),
])  # fmt: skip
def test_bad_settings_fail_validation(comfy, overrides, expected):
    code, body = comfy.queue(graph(**overrides))
    assert code == 400, body
    assert expected in json.dumps(body.get("node_errors", {})), body


def test_empty_prompt_and_cfg_without_negative_are_clear_errors(comfy):
    for overrides, expected in (({"prompt": "  "}, "prompt: empty"), ({"cfg": 3.0}, "needs a negative")):
        entry = run(comfy, graph(**overrides))
        err = execution_error(entry)
        assert err is not None and expected in err["exception_message"], err


def test_example_workflow_runs_as_it_is(comfy):
    """workflows/spatialscore_best_of_n_pruned.json needs nothing but the pack: it runs and keeps 2 of 16."""
    from pathlib import Path

    from .comfyui_harness import ui_to_api

    workflow = json.loads((Path(__file__).resolve().parents[2] / "workflows" /
                           "spatialscore_best_of_n_pruned.json").read_text())  # fmt: skip
    prompt = ui_to_api(workflow, comfy.object_info)
    node = next(k for k, v in prompt.items() if v["class_type"] == NODE)
    entry = run(comfy, prompt)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    rows = entry["outputs"][node]["spatialscore"]
    assert len(rows) == 2 and rows[0]["mean"] >= rows[1]["mean"]
    assert "46 model forwards (96 without pruning)" in entry["outputs"][node]["text"][0]


def _example_prompt(comfy):
    from pathlib import Path

    from .comfyui_harness import ui_to_api

    workflow = json.loads((Path(__file__).resolve().parents[2] / "workflows" /
                           "spatialscore_best_of_n_pruned.json").read_text())  # fmt: skip
    prompt = ui_to_api(workflow, comfy.object_info)
    return prompt, next(k for k, v in prompt.items() if v["class_type"] == NODE)


def test_a_saved_workflow_with_n_beyond_the_widget_is_refused_with_one_message(comfy):
    """The shipped example with n = 100000 (the widget's max is 256; ComfyUI does not check it for an input that
    validate_inputs takes): refused at /prompt before anything runs."""
    prompt, node = _example_prompt(comfy)
    prompt[node]["inputs"]["n"] = 100000
    code, body = comfy.queue(prompt)
    assert code == 400, body
    refused_once(comfy, body, node, "n: 100000 is above its maximum 256")


def test_a_run_that_cannot_fit_in_memory_is_refused_before_sampling(comfy):
    """Inside the widgets' limits, 256 candidates at 8192x8192 cannot fit: one execution error with the estimate
    and what would fit, before any sampling, and the server stays up."""
    started = time.monotonic()
    entry = run(comfy, graph(n=256, keep=1, schedule="none", width=8192, height=8192))
    err = execution_error(entry)
    assert err is not None and err["exception_type"].endswith("MemoryLimitError"), err
    assert err["exception_message"].startswith("n=256 at 8192x8192 needs about "), err["exception_message"]
    assert " free in RAM: " in err["exception_message"] and "fits" in err["exception_message"]
    assert time.monotonic() - started < 60 and comfy.proc.poll() is None
    assert comfy.get("/system_stats")["system"]["comfyui_version"]
