"""The example workflows, offline: UI format, consistent links, thumbnails, and the API form the real frontend
produced for them (tests/nodes/fixtures, written by scripts/comfyui_browser.mjs build-workflows)."""

import json
from pathlib import Path

import pytest
from PIL import Image

from .comfyui_harness import ui_to_api

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
FIXTURES = Path(__file__).parent / "fixtures"
NAMES = ["spatialscore_score_images", "spatialscore_flux_best_of_n", "spatialscore_edit_rerank",
         "spatialscore_best_of_n_pruned"]


def load(name):
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def test_every_workflow_has_a_thumbnail_and_a_description():
    assert sorted(p.stem for p in WORKFLOWS.glob("*.json")) == sorted(NAMES)
    readme = (WORKFLOWS / "README.md").read_text()
    for name in NAMES:
        with Image.open(WORKFLOWS / f"{name}.jpg") as im:
            assert im.format == "JPEG" and im.width >= 400
        assert (WORKFLOWS / f"{name}.jpg").stat().st_size < 300_000
        assert f"{name}.json" in readme


@pytest.mark.parametrize("name", NAMES)
def test_ui_format_and_links_are_consistent(name):
    wf = load(name)
    assert {"nodes", "links", "version", "last_node_id", "last_link_id"} <= wf.keys()
    nodes = {n["id"]: n for n in wf["nodes"]}
    assert len(nodes) == len(wf["nodes"])
    for link_id, src, src_slot, dst, dst_slot, kind in wf["links"]:
        assert nodes[src]["outputs"][src_slot]["type"] == kind
        assert nodes[dst]["inputs"][dst_slot]["link"] == link_id
        assert link_id in nodes[src]["outputs"][src_slot]["links"]


@pytest.mark.parametrize("name", NAMES)
def test_converter_matches_the_frontend(name):
    info = json.loads((FIXTURES / "object_info.json").read_text())
    frontend = json.loads((FIXTURES / f"{name}.api.json").read_text())
    expected = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in frontend.items()}
    assert ui_to_api(load(name), info) == expected


def test_flux_graph_generates_n_candidates_and_reranks_with_latents():
    api = ui_to_api(load("spatialscore_flux_best_of_n"), json.loads((FIXTURES / "object_info.json").read_text()))
    by_type = {v["class_type"]: (k, v) for k, v in api.items()}
    _, rerank = by_type["SpatialScoreRerank"]
    sampler_id, _ = by_type["KSampler"]
    decode_id, _ = by_type["VAEDecode"]
    assert rerank["inputs"]["images"] == [decode_id, 0]
    assert rerank["inputs"]["latent"] == [sampler_id, 0]
    assert by_type["EmptySD3LatentImage"][1]["inputs"]["batch_size"] > rerank["inputs"]["top_k"]
    assert by_type["SaveImage"][1]["inputs"]["images"] == [by_type["SpatialScoreRerank"][0], 0]
    # one prompt feeds both Flux and the scorer
    assert rerank["inputs"]["prompt"] == by_type["CLIPTextEncode"][1]["inputs"]["text"]


def test_converter_rejects_unknown_and_bypassed_nodes():
    info = json.loads((FIXTURES / "object_info.json").read_text())
    wf = load("spatialscore_score_images")
    bad = json.loads(json.dumps(wf))
    bad["nodes"][1]["type"] = "NoSuchNode"
    with pytest.raises(ValueError, match="unknown node type"):
        ui_to_api(bad, info)
    bypassed = json.loads(json.dumps(wf))
    next(n for n in bypassed["nodes"] if n["type"] == "SaveImage")["mode"] = 4
    with pytest.raises(ValueError, match="bypassed"):
        ui_to_api(bypassed, info)


def test_edit_graph_scores_and_reranks_the_same_edits_with_the_builtin_scorer():
    api = ui_to_api(load("spatialscore_edit_rerank"), json.loads((FIXTURES / "object_info.json").read_text()))
    by_type = {}
    for key, node in api.items():
        by_type.setdefault(node["class_type"], []).append((key, node))
    (loader_id, loader), = by_type["SpatialScoreEditLoader"]
    (_, score), = by_type["SpatialScoreEditScore"]
    (rerank_id, rerank), = by_type["SpatialScoreEditRerank"]
    assert loader["inputs"]["edit_scorer"] == "shapes-edit"
    for key in ("edit_scorer", "source", "edited", "instruction"):
        assert score["inputs"][key] == rerank["inputs"][key]
    assert score["inputs"]["source"] != score["inputs"]["edited"]
    assert by_type["SaveImage"][0][1]["inputs"]["images"] == [rerank_id, 0]
    from training.dataset.edit.instructions import parse_instruction

    parse_instruction(score["inputs"]["instruction"])  # in the built-in scorer's forms


def test_pruned_best_of_n_graph_runs_on_what_ships():
    api = ui_to_api(load("spatialscore_best_of_n_pruned"), json.loads((FIXTURES / "object_info.json").read_text()))
    by_type = {v["class_type"]: (k, v) for k, v in api.items()}
    _, sampler = by_type["SpatialScoreBestOfNSampler"]
    gen_id, gen = by_type["SpatialScoreShapesGeneratorLoader"]
    assert gen["inputs"]["generator"] == "shapes" and by_type["SpatialScoreLoader"][1]["inputs"]["scorer"] == "shapes"
    assert sampler["inputs"]["model"] == [gen_id, 0] and sampler["inputs"]["vae"] == [gen_id, 2]
    assert sampler["inputs"]["n"] > sampler["inputs"]["keep"] and sampler["inputs"]["schedule"] == "default"
    # one prompt feeds the conditioning and the scorer
    prompt_id, _ = by_type["PrimitiveStringMultiline"]
    assert sampler["inputs"]["prompt"] == by_type["CLIPTextEncode"][1]["inputs"]["text"] == [prompt_id, 0]
    assert by_type["SaveImage"][1]["inputs"]["images"] == [by_type["SpatialScoreBestOfNSampler"][0], 0]
