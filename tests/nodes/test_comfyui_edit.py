"""Edit reward nodes against a real ComfyUI (headless, 127.0.0.1, this pack installed): the built-in shapes-edit
scorer scores and reranks a batch of edits, bad input gets one clear error, and the example edit workflow runs.

Skipped, with the reason, unless SPATIALSCORE_COMFYUI names a ComfyUI checkout (see tests/nodes/comfyui_harness.py
and scripts/comfyui_setup.sh).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from .comfyui_harness import ComfyServer, comfyui_version, execution_error, find_comfyui, ui_to_api

CHECKOUT, PYTHON, REASON = find_comfyui()
pytestmark = [pytest.mark.skipif(CHECKOUT is None, reason=REASON), pytest.mark.slow, pytest.mark.real_parts]

ROOT = Path(__file__).resolve().parents[2]
NODES = ("SpatialScoreEditLoader", "SpatialScoreEditScore", "SpatialScoreEditRerank")
WORKFLOW = ROOT / "workflows" / "spatialscore_edit_rerank.json"


def _save_frames(path: Path, images) -> None:
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0, disposal=0, blend=0)


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    from training.dataset.edit.edits import sample_example
    from training.dataset.edit.scene import render

    ex = sample_example(random.Random(21), "wrong_direction", "move")
    base = tmp_path_factory.mktemp("comfyui-edit")
    (base / "input").mkdir(parents=True)
    big = [render(s, 256) for s in (ex.source, ex.chosen, ex.rejected)]
    big[0].save(base / "input" / "edit_source.png")
    _save_frames(base / "input" / "edit_candidates.png", [big[2], big[1], big[0]])  # wrong, right, unchanged
    _save_frames(base / "input" / "two_sources.png", [big[0], big[1]])  # distinct: APNG merges equal frames
    with ComfyServer(CHECKOUT, PYTHON, base) as server:
        server.instruction = ex.instruction.text
        server.object_info = server.get("/object_info")
        yield server
    print(f"\nComfyUI {comfyui_version(CHECKOUT)} log tail:\n{server.log_tail(10)}")


def _run(comfy, prompt, timeout=300):
    code, body = comfy.queue(prompt)
    assert code == 200 and not body.get("node_errors"), body
    return comfy.wait(body["prompt_id"], timeout)


def _graph(instruction, source="edit_source.png"):
    return {
        "1": {"class_type": "SpatialScoreEditLoader", "inputs": {"edit_scorer": "shapes-edit", "dtype": "auto",
                                                                 "device": "auto", "keep_loaded": False,
                                                                 "batch_size": 2}},
        "2": {"class_type": "LoadImage", "inputs": {"image": source}},
        "3": {"class_type": "LoadImage", "inputs": {"image": "edit_candidates.png"}},
        "4": {"class_type": "SpatialScoreEditScore", "inputs": {"edit_scorer": ["1", 0], "source": ["2", 0],
                                                                "edited": ["3", 0], "instruction": instruction,
                                                                "instruction_mode": "auto"}},
    }


def test_edit_nodes_load_with_tooltips(comfy):
    info = comfy.object_info
    assert all(n in info for n in NODES), comfy.log_tail()
    for node in NODES:
        for section in ("required", "optional"):
            for name, spec in info[node]["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{node}.{name} has no tooltip"
    assert "shapes-edit" in info["SpatialScoreEditLoader"]["input"]["required"]["edit_scorer"][1]["options"]
    assert info["SpatialScoreEditScore"]["output_name"] == ["scores", "stds", "preview", "reasoning"]
    assert info["SpatialScoreEditScore"]["output_is_list"] == [True, True, False, True]


def test_scores_and_reranks_edits_with_the_builtin_scorer(comfy):
    prompt = _graph(comfy.instruction)
    prompt["5"] = {"class_type": "SpatialScoreEditRerank", "inputs": {
        "edit_scorer": ["1", 0], "source": ["2", 0], "edited": ["3", 0], "instruction": comfy.instruction,
        "instruction_mode": "auto", "top_k": 1, "rank_by": "mean", "risk_lambda": 1.0}}
    prompt["6"] = {"class_type": "SaveImage", "inputs": {"images": ["4", 2], "filename_prefix": "edit/preview"}}
    entry = _run(comfy, prompt)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    rows = entry["outputs"]["4"]["spatialscore"]
    means = [r["mean"] for r in rows]
    print(f"\n{comfy.instruction!r}: wrong direction {means[0]:.3f}, correct {means[1]:.3f}, unchanged {means[2]:.3f}")
    assert means[1] > means[0] and means[1] > means[2]  # the correct edit wins
    assert [r["index"] for r in entry["outputs"]["5"]["spatialscore"]] == [1]
    assert len(list((comfy.base / "output" / "edit").glob("preview_*.png"))) == 3


@pytest.mark.parametrize(("source", "instruction", "message"), [
    ("two_sources.png", None, "source: a batch of 2 images matches neither 1 nor the edited batch (3 images)"),
    ("edit_source.png", "  ", "instruction: empty"),
    ("edit_source.png", "make the picture nicer", "cannot read instruction 'make the picture nicer'"),
])
def test_bad_input_is_a_clear_error(comfy, source, instruction, message):
    entry = _run(comfy, _graph(comfy.instruction if instruction is None else instruction, source))
    err = execution_error(entry)
    assert entry["status"]["status_str"] == "error" and err["node_type"] == "SpatialScoreEditScore"
    assert message in err["exception_message"]
    assert "Traceback" not in err["exception_message"]


def test_example_edit_workflow_validates_and_runs(comfy):
    api = ui_to_api(json.loads(WORKFLOW.read_text()), comfy.object_info)
    for node in api.values():
        if node["class_type"] == "LoadImage":
            node["inputs"]["image"] = "edit_source.png" if "source" in node["inputs"]["image"] else \
                "edit_candidates.png"
        if "instruction" in node["inputs"]:
            node["inputs"]["instruction"] = comfy.instruction
    entry = _run(comfy, api)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
