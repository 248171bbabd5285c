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
         "spatialscore_best_of_n_pruned", "spatialscore_shapes_grpo", "spatialscore_flux_grpo",
         "spatialscore_evaluate_shapes", "spatialscore_qwen_image_grpo"]


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


def _grpo_graph(name):
    api = ui_to_api(load(name), json.loads((FIXTURES / "object_info.json").read_text()))
    by_type = {}
    for key, node in api.items():
        by_type.setdefault(node["class_type"], []).append((key, node))
    (grpo_id, grpo), = by_type["SpatialScoreGRPOTrain"]
    (before_id, before), (after_id, after) = sorted(by_type["KSampler"], key=lambda kv: kv[1]["inputs"]["model"] !=
                                                    grpo["inputs"]["model"])  # fmt: skip
    return api, by_type, grpo_id, grpo, before, after


def _assert_same_draw_before_and_after(grpo_id, grpo, before, after):
    # the right-hand pair draws the same prompt, seed and noise with the base MODEL and with the trained one
    assert before["inputs"]["model"] == grpo["inputs"]["model"] and after["inputs"]["model"] == [grpo_id, 0]
    for key in ("seed", "steps", "cfg", "sampler_name", "scheduler", "positive", "negative", "latent_image"):
        assert before["inputs"][key] == after["inputs"][key], key


def test_shapes_grpo_graph_trains_on_what_ships_with_non_heldout_prompts():
    api, by_type, grpo_id, grpo, before, after = _grpo_graph("spatialscore_shapes_grpo")
    (gen_id, gen), = by_type["SpatialScoreShapesGeneratorLoader"]
    assert gen["inputs"]["generator"] == "shapes" and by_type["SpatialScoreLoader"][0][1]["inputs"]["scorer"] == "shapes"
    assert [grpo["inputs"][k] for k in ("model", "clip", "vae")] == [[gen_id, 0], [gen_id, 1], [gen_id, 2]]
    _assert_same_draw_before_and_after(grpo_id, grpo, before, after)
    # the headless preset's settings, so `python -m training.grpo --preset shapes` runs the same experiment
    assert (grpo["inputs"]["group_size"], grpo["inputs"]["sampling_steps"], grpo["inputs"]["width"]) == (24, 6, 64)
    prompts = [p for p in grpo["inputs"]["prompts"].splitlines() if p.strip()]
    train = [p.strip() for p in (ROOT / "training/grpo/configs/shapes_prompts.txt").read_text().splitlines()
             if p.strip() and not p.startswith("#")]  # fmt: skip
    heldout = set((ROOT / "training/grpo/configs/shapes_heldout.txt").read_text().splitlines())
    assert prompts == train[: len(prompts)] and len(prompts) >= 100 and not heldout & set(prompts)


def test_flux_grpo_graph_uses_the_stock_flux_loaders_and_a_muted_lora_loader():
    api, by_type, grpo_id, grpo, before, after = _grpo_graph("spatialscore_flux_grpo")
    (unet_id, unet), = by_type["UNETLoader"]
    (clip_id, clip), = by_type["DualCLIPLoader"]
    (vae_id, vae), = by_type["VAELoader"]
    assert unet["inputs"]["unet_name"] == "flux1-dev.safetensors" and vae["inputs"]["vae_name"] == "ae.safetensors"
    assert {clip["inputs"]["clip_name1"], clip["inputs"]["clip_name2"]} == {"clip_l.safetensors", "t5xxl_fp16.safetensors"}
    assert clip["inputs"]["type"] == "flux"
    assert [grpo["inputs"][k] for k in ("model", "clip", "vae")] == [[unet_id, 0], [clip_id, 0], [vae_id, 0]]
    _assert_same_draw_before_and_after(grpo_id, grpo, before, after)
    assert grpo["inputs"]["top_k"] * 2 <= grpo["inputs"]["group_size"] and grpo["inputs"]["width"] % 16 == 0
    # the reuse loader is muted (a name not yet in models/loras fails validation) and names the file GRPO writes
    ui = load("spatialscore_flux_grpo")
    (lora,) = [n for n in ui["nodes"] if n["type"] == "LoraLoaderModelOnly"]
    assert lora["mode"] == 2 and "LoraLoaderModelOnly" not in by_type
    assert lora["widgets_values"][0] == grpo["inputs"]["lora_name"] + ".safetensors"


def test_evaluate_graph_runs_on_what_ships():
    api = ui_to_api(load("spatialscore_evaluate_shapes"), json.loads((FIXTURES / "object_info.json").read_text()))
    by_type = {v["class_type"]: (k, v) for k, v in api.items()}
    evaluate_id, evaluate = by_type["SpatialScoreEvaluate"]
    gen_id, gen = by_type["SpatialScoreShapesGeneratorLoader"]
    assert gen["inputs"]["generator"] == "shapes" and by_type["SpatialScoreLoader"][1]["inputs"]["scorer"] == "shapes"
    assert [evaluate["inputs"][k] for k in ("model", "clip", "vae")] == [[gen_id, 0], [gen_id, 1], [gen_id, 2]]
    assert evaluate["inputs"]["lora_name"] == "shapes-grpo" and evaluate["inputs"]["prompt_set"] == "shapes-heldout"
    # the shipped generator's own sampling: 6 steps, no guidance, 64 px
    assert [evaluate["inputs"][k] for k in ("steps", "guidance", "width", "height")] == [6, 0, 64, 64]
    assert by_type["SaveImage"][1]["inputs"]["images"] == [evaluate_id, 1]  # the report is the node's own text


def test_qwen_image_grpo_graph_uses_the_stock_qwen_image_loaders_and_true_cfg():
    api, by_type, grpo_id, grpo, before, after = _grpo_graph("spatialscore_qwen_image_grpo")
    (unet_id, unet), = by_type["UNETLoader"]
    (clip_id, clip), = by_type["CLIPLoader"]
    (vae_id, vae), = by_type["VAELoader"]
    assert unet["inputs"]["unet_name"] == "qwen_image_fp8_e4m3fn.safetensors"
    assert clip["inputs"]["clip_name"] == "qwen_2.5_vl_7b_fp8_scaled.safetensors" and clip["inputs"]["type"] == "qwen_image"
    assert vae["inputs"]["vae_name"] == "qwen_image_vae.safetensors"
    assert [grpo["inputs"][k] for k in ("model", "clip", "vae")] == [[unet_id, 0], [clip_id, 0], [vae_id, 0]]
    # the negative prompt feeds GRPO's true CFG and both before/after samplers (cfg > 1)
    negative_id = grpo["inputs"]["negative"][0]
    assert api[negative_id]["class_type"] == "CLIPTextEncode" and api[negative_id]["inputs"]["clip"] == [clip_id, 0]
    assert before["inputs"]["negative"] == after["inputs"]["negative"] == [negative_id, 0] and before["inputs"]["cfg"] > 1
    _assert_same_draw_before_and_after(grpo_id, grpo, before, after)
    # flow_grpo's Qwen-Image LoRA and SDE settings (training/grpo/configs/qwen_image_spatial.toml)
    assert (grpo["inputs"]["lora_rank"], grpo["inputs"]["lora_alpha"], grpo["inputs"]["noise_level"]) == (64, 128, 1.2)
    ui = load("spatialscore_qwen_image_grpo")
    (lora,) = [n for n in ui["nodes"] if n["type"] == "LoraLoaderModelOnly"]
    assert lora["mode"] == 2 and lora["widgets_values"][0] == grpo["inputs"]["lora_name"] + ".safetensors"
