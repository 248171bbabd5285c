"""Against a real ComfyUI (headless, 127.0.0.1, this pack installed): the nodes load, the example workflows validate,
and an API graph scores and reranks an 8-image batch with a tiny scorer, carrying latents and masks.

Skipped, with the reason, unless SPATIALSCORE_COMFYUI names a ComfyUI checkout (see tests/nodes/comfyui_harness.py
and scripts/comfyui_setup.sh).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .comfyui_harness import (
    ComfyServer,
    comfyui_version,
    execution_error,
    find_comfyui,
    ui_to_api,
    write_candidates,
    write_latent,
)

CHECKOUT, PYTHON, REASON = find_comfyui()
pytestmark = [pytest.mark.skipif(CHECKOUT is None, reason=REASON), pytest.mark.slow, pytest.mark.real_parts]

ROOT = Path(__file__).resolve().parents[2]
SCORER = "SpatialScore-Qwen2.5-VL-7B"  # the name the example workflows use; here a tiny random scorer
ZERO_SHOT = "Qwen2.5-VL-7B-Instruct"
PROMPT = "a red circle to the left of a blue square"
NODES = ("SpatialScoreLoader", "SpatialScoreScore", "SpatialScoreRerank")


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    tiny = pytest.importorskip("training.reward.models.tiny")
    from PIL import Image

    tmp = tmp_path_factory.mktemp("comfyui")
    base, extra = tmp / "base", tmp / "extra"
    # a scorer found through extra_model_paths.yaml, a zero-shot base in the default models/spatialscore,
    # and a folder of the wrong kind
    tiny.save_tiny_scorer(extra / "spatialscore" / SCORER, seed=0)
    tiny.save_tiny_qwen25vl(base / "models" / "spatialscore" / ZERO_SHOT, seed=1)
    wrong = base / "models" / "spatialscore" / "not_a_vlm"
    wrong.mkdir(parents=True)
    (wrong / "config.json").write_text(json.dumps({"model_type": "llama"}))
    # names the Flux example refers to (empty files: enough for validation, not for loading)
    for sub, name in [("unet", "flux1-dev.safetensors"), ("clip", "clip_l.safetensors"),
                      ("clip", "t5xxl_fp16.safetensors"), ("vae", "ae.safetensors"),
                      ("unet", "qwen_image_fp8_e4m3fn.safetensors"), ("clip", "qwen_2.5_vl_7b_fp8_scaled.safetensors"),
                      ("vae", "qwen_image_vae.safetensors")]:
        (extra / sub).mkdir(parents=True, exist_ok=True)
        (extra / sub / name).write_bytes(b"")
    yaml = tmp / "extra_model_paths.yaml"
    yaml.write_text(f"spatialscore_test:\n  base_path: {extra}\n  spatialscore: spatialscore\n"
                    f"  diffusion_models: unet\n  text_encoders: clip\n  vae: vae\n")
    (base / "input").mkdir(parents=True)
    frames = write_candidates(base / "input")
    write_latent(base / "input")
    Image.fromarray(frames[0, ..., :3]).save(base / "input" / "example.png")  # what the scoring example loads
    with ComfyServer(CHECKOUT, PYTHON, base, yaml) as server:
        server.frames = frames
        server.object_info = server.get("/object_info")
        yield server
    print(f"\nComfyUI {comfyui_version(CHECKOUT)} log tail:\n{server.log_tail(15)}")


def loader(scorer=SCORER, batch_size=3):
    return {"class_type": "SpatialScoreLoader", "inputs": {"scorer": scorer, "dtype": "auto", "device": "auto",
                                                           "keep_loaded": False, "batch_size": batch_size}}


def run(comfy, prompt, timeout=300):
    code, body = comfy.queue(prompt)
    assert code == 200 and not body.get("node_errors"), body
    return comfy.wait(body["prompt_id"], timeout)


def test_every_node_loads_with_tooltips(comfy):
    info = comfy.object_info
    assert all(n in info for n in NODES), comfy.log_tail()
    ours = [line for line in comfy.log_path.read_text().splitlines() if "comfyui-spatialscore" in line]
    timing = [line for line in ours if "seconds" in line]  # ComfyUI's import-time line for the pack
    assert len(timing) == 1 and "IMPORT FAILED" not in timing[0], ours
    assert not any("Cannot import" in line or "Error" in line for line in ours), ours
    print(f"\n{timing[0].strip()}")
    for node in NODES:
        for section in ("required", "optional"):
            for name, spec in info[node]["input"].get(section, {}).items():
                assert spec[1].get("tooltip"), f"{node}.{name} has no tooltip"
    assert info["SpatialScoreRerank"]["output_name"] == ["top_images", "top_latent", "top_mask", "top_scores",
                                                         "top_stds", "indices"]
    assert info["SpatialScoreRerank"]["output_is_list"] == [False, False, False, True, True, True]
    assert info["SpatialScoreScore"]["output_node"] and info["SpatialScoreRerank"]["output_node"]
    choices = info["SpatialScoreLoader"]["input"]["required"]["scorer"][1]["options"]
    assert SCORER in choices and ZERO_SHOT in choices and "not_a_vlm" not in choices


def test_released_node_schemas_are_unchanged(comfy):
    """Released node ids, inputs and outputs, as the running ComfyUI reports them, against the committed
    snapshot: removing, renaming or retyping any of them fails; new nodes and optional inputs pass."""
    from nodes.logic.schema_compat import incompatible_changes, snapshot

    released = json.loads((Path(__file__).parent / "fixtures" / "node_schema.json").read_text())
    assert incompatible_changes(released, snapshot(comfy.object_info)) == []


def test_score_and_rerank_a_batch_of_8_carrying_latents_and_masks(comfy):
    prompt = {
        "1": loader(),
        "2": {"class_type": "LoadImage", "inputs": {"image": "candidates.png"}},
        "3": {"class_type": "LoadLatent", "inputs": {"latent": "candidates.latent"}},
        "4": {"class_type": "SpatialScoreScore", "inputs": {"scorer": ["1", 0], "images": ["2", 0],
                                                            "prompt": PROMPT, "prompt_mode": "auto"}},
        "5": {"class_type": "SpatialScoreRerank", "inputs": {
            "scorer": ["1", 0], "images": ["2", 0], "prompt": PROMPT, "prompt_mode": "auto", "top_k": 3,
            "rank_by": "mean", "risk_lambda": 1.0, "latent": ["3", 0], "mask": ["2", 1]}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "it/top"}},
        "7": {"class_type": "MaskToImage", "inputs": {"mask": ["5", 2]}},
        "8": {"class_type": "SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": "it/mask"}},
        "9": {"class_type": "SaveLatent", "inputs": {"samples": ["5", 1], "filename_prefix": "it/latent"}},
    }
    entry = run(comfy, prompt)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    out = entry["outputs"]

    scored = out["4"]["spatialscore"]
    assert [r["index"] for r in scored] == list(range(8))
    means = np.array([r["mean"] for r in scored])
    assert np.isfinite(means).all() and len(set(means.round(6))) == 8
    assert len(out["4"]["images"]) == 8 and "image 7:" in out["4"]["text"][0]

    top = out["5"]["spatialscore"]
    idx = [r["index"] for r in top]
    top_means = [r["mean"] for r in top]
    print(f"\nscores of the 8 candidates: {np.round(means, 4).tolist()}\nrerank top 3: indices {idx}, "
          f"means {np.round(top_means, 4).tolist()}")
    assert len(top) == 3 and top_means == sorted(top_means, reverse=True)
    assert idx == np.argsort(-means, kind="stable")[:3].tolist()
    assert np.allclose(top_means, means[idx], atol=1e-4)  # absolute scores: same in both nodes

    out_dir = comfy.base / "output" / "it"
    saved = sorted(out_dir.glob("top_*.png"))
    masks = sorted(out_dir.glob("mask_*.png"))
    latents = sorted(out_dir.glob("latent_*.latent"))
    assert len(saved) == 3 and len(masks) == 3 and len(latents) == 1
    from PIL import Image
    from safetensors.torch import load_file

    for k, (img_file, mask_file) in enumerate(zip(saved, masks, strict=True)):
        frame = comfy.frames[idx[k]]
        assert np.array_equal(np.asarray(Image.open(img_file).convert("RGB")), frame[..., :3])
        mask = np.asarray(Image.open(mask_file).convert("L")).astype(int)
        assert np.abs(mask - (255 - frame[..., 3].astype(int))).max() <= 1  # MASK = 1 - alpha
    samples = load_file(str(latents[0]))["latent_tensor"]
    assert samples.shape[0] == 3 and samples[:, 0, 0, 0].tolist() == [float(i) for i in idx]


def test_a_prompt_the_shapes_scorer_cannot_read_says_so_where_the_user_looks(comfy):
    """Words outside the built-in scorer's vocabulary (English, French, Chinese): the first line of each node's text,
    a flagged badge record per image, the warning in each preview PNG's metadata; the Loader's tooltip names what
    the built-ins judge."""
    from PIL import Image

    from nodes.logic.examples import EXAMPLE_INPUTS  # a shapes-world picture the pack puts into input/

    graph = {"1": loader("shapes", batch_size=8),
             "2": {"class_type": "LoadImage", "inputs": {"image": EXAMPLE_INPUTS[0]}},
             "3": {"class_type": "SpatialScoreScore", "inputs": {"scorer": ["1", 0], "images": ["2", 0],
                                                                 "prompt": "a cat on a sofa", "prompt_mode": "auto"}},
             "4": {"class_type": "SpatialScoreRerank", "inputs": {
                 "scorer": ["1", 0], "images": ["2", 0], "prompt": "红色圆圈在蓝色方块的左边", "prompt_mode": "auto",
                 "top_k": 2, "rank_by": "mean", "risk_lambda": 1.0}},
             "5": {"class_type": "SpatialScoreScore", "inputs": {
                 "scorer": ["1", 0], "images": ["2", 0], "prompt": "a red circle to the left of a blue square",
                 "prompt_mode": "auto"}}}  # fmt: skip
    entry = run(comfy, graph)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    out = entry["outputs"]
    score_text = out["3"]["text"][0].splitlines()
    assert score_text[0] == ("warning (every image): the prompt has words the shapes scorer does not know (cat, on, "
                             "sofa); the scores below mean little")  # fmt: skip
    assert score_text[1].startswith("SpatialScore shapes (reward,")
    assert out["4"]["text"][0].splitlines()[0].startswith("warning (every image): the prompt has words the shapes "
                                                          "scorer does not know (红, 色, 圆, 圈")  # fmt: skip
    for node in ("3", "4"):
        rows = out[node]["spatialscore"]
        assert rows and all(r["flag"] == "unknown words" for r in rows), rows
        for image, row in zip(out[node]["images"], rows, strict=True):
            assert image["type"] == "temp"
            with Image.open(comfy.base / "temp" / image["subfolder"] / image["filename"]) as png:
                record = json.loads(png.text["spatialscore"])
            assert record["warning"] == row["warning"] and record["flag"] == "unknown words"
            assert record["mean"] == pytest.approx(row["mean"])
    # the same picture with a prompt in the scorer's words: no warning anywhere
    assert "warning" not in out["5"]["text"][0] and not any("flag" in r for r in out["5"]["spatialscore"])
    image = out["5"]["images"][0]
    with Image.open(comfy.base / "temp" / image["subfolder"] / image["filename"]) as png:
        assert "warning" not in json.loads(png.text["spatialscore"])

    tooltip = comfy.object_info["SpatialScoreLoader"]["input"]["required"]["scorer"][1]["tooltip"]
    assert "'shapes' and 'shapes-gen' judge only the shapes world" in tooltip
    assert "these words: a, above, and, below, blue, circle, green, left, of, red, right, square, the, to, " \
           "triangle, yellow." in tooltip


def test_prompt_count_mismatch_is_a_clear_error(comfy):
    prompt = {"1": loader(), "2": {"class_type": "LoadImage", "inputs": {"image": "candidates.png"}},
              "3": {"class_type": "SpatialScoreScore", "inputs": {"scorer": ["1", 0], "images": ["2", 0],
                                                                  "prompt": "one\ntwo", "prompt_mode": "auto"}}}
    entry = run(comfy, prompt)
    err = execution_error(entry)
    assert entry["status"]["status_str"] == "error" and err["node_type"] == "SpatialScoreScore"
    assert "2 prompt lines for a batch of 8 images" in err["exception_message"]


@pytest.mark.parametrize(("choice", "message"), [
    ("../../etc", "is not a folder name from the list"),
    ("not_a_vlm", "holds a model of type 'llama'"),
    ("missing_scorer", "was not found"),
])
def test_invalid_scorer_choice_is_refused_at_validation(comfy, choice, message):
    prompt = {"1": loader(choice), "2": {"class_type": "LoadImage", "inputs": {"image": "candidates.png"}},
              "3": {"class_type": "SpatialScoreScore", "inputs": {"scorer": ["1", 0], "images": ["2", 0],
                                                                  "prompt": PROMPT, "prompt_mode": "auto"}}}
    code, body = comfy.queue(prompt)
    assert code == 400
    assert message in json.dumps(body["node_errors"]["1"])


def test_zero_shot_scoring_through_the_default_model_folder(comfy):
    prompt = {"1": loader(ZERO_SHOT), "2": {"class_type": "LoadImage", "inputs": {"image": "candidates.png"}},
              "3": {"class_type": "SpatialScoreScore", "inputs": {"scorer": ["1", 0], "images": ["2", 0],
                                                                  "prompt": PROMPT, "prompt_mode": "auto"}}}
    entry = run(comfy, prompt)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    rows = entry["outputs"]["3"]["spatialscore"]
    assert len(rows) == 8 and all(r["std"] == 0.0 for r in rows)
    assert "(zero-shot," in entry["outputs"]["3"]["text"][0]


def test_cancel_stops_scoring_between_batches(comfy):
    """Progress is reported per scored batch, and ComfyUI's progress hook raises on Cancel (POST /interrupt)."""
    import time

    prompt = {"1": loader(batch_size=1), "2": {"class_type": "LoadImage", "inputs": {"image": "candidates.png"}},
              "3": {"class_type": "RepeatImageBatch", "inputs": {"image": ["2", 0], "amount": 40}},
              "4": {"class_type": "SpatialScoreScore", "inputs": {"scorer": ["1", 0], "images": ["3", 0],
                                                                  "prompt": PROMPT, "prompt_mode": "auto"}}}
    prompt["3"]["inputs"]["amount"] = 1
    assert run(comfy, prompt)["status"]["status_str"] == "success"  # loads (and caches) the scorer first
    prompt["3"]["inputs"]["amount"] = 40
    code, body = comfy.queue(prompt)
    assert code == 200, body
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not comfy.get("/queue")["queue_running"]:
        time.sleep(0.1)
    time.sleep(1.5)  # into the 320 single-image batches
    started = time.monotonic()
    comfy.post("/interrupt", {})
    entry = comfy.wait(body["prompt_id"], 120)
    stopped_after = time.monotonic() - started
    kinds = {kind: data for kind, data in entry["status"]["messages"]}
    assert "execution_interrupted" in kinds, entry["status"]
    assert kinds["execution_interrupted"]["node_type"] == "SpatialScoreScore"
    assert stopped_after < 10.0
    print(f"\ncancelled mid-batch; stopped {stopped_after:.2f} s after /interrupt")


def test_unconnected_latent_blocks_its_reader_instead_of_passing_none(comfy):
    prompt = {"1": loader(), "2": {"class_type": "LoadImage", "inputs": {"image": "candidates.png"}},
              "3": {"class_type": "SpatialScoreRerank", "inputs": {
                  "scorer": ["1", 0], "images": ["2", 0], "prompt": PROMPT, "prompt_mode": "auto", "top_k": 2,
                  "rank_by": "mean - lambda*std", "risk_lambda": 0.5}},
              "4": {"class_type": "SaveLatent", "inputs": {"samples": ["3", 1], "filename_prefix": "blocked/x"}}}
    entry = run(comfy, prompt)
    assert "4" not in entry["outputs"] and not (comfy.base / "output" / "blocked").exists()
    assert len(entry["outputs"]["3"]["spatialscore"]) == 2


PLACEMENT_CHECK = """
import importlib.util, json, sys, torch
sys.path.insert(0, ".")
import comfy.options
comfy.options.enable_args_parsing()  # so that --cpu is read, as main.py does
import comfy.model_management as mm
spec = importlib.util.spec_from_file_location("spatialscore_pack", PACK + "/__init__.py",
                                              submodule_search_locations=[PACK])
pack = importlib.util.module_from_spec(spec); sys.modules["spatialscore_pack"] = pack; spec.loader.exec_module(pack)
from spatialscore_pack.nodes.comfy.models import ComfyPlacement

class Scorer:  # the parts of training.reward.Scorer the placement uses
    def __init__(self):
        self.model, self.device = torch.nn.Linear(4, 4), torch.device("cpu")
    def to(self, device):
        self.device = torch.device(device); self.model.to(device); return self

s = Scorer()
p = ComfyPlacement(s, mm.get_torch_device(), mm.text_encoder_offload_device())
before = len(mm.current_loaded_models)
p.load(s)
loaded = p.is_registered()
p.offload(s)
print(json.dumps({"loaded": loaded, "after_offload": p.is_registered(), "before": before,
                  "after": len(mm.current_loaded_models), "device": str(s.device)}))
"""


def test_placement_registers_with_comfy_model_management_and_unregisters():
    import subprocess

    code = PLACEMENT_CHECK.replace("PACK", repr(str(ROOT)), 2)
    out = subprocess.run([str(PYTHON), "-c", code, "--cpu"], cwd=CHECKOUT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info == {"loaded": True, "after_offload": False, "before": 0, "after": 0, "device": "cpu"}, info


@pytest.mark.parametrize("name", ["spatialscore_score_images", "spatialscore_flux_best_of_n", "spatialscore_flux_grpo",
                                  "spatialscore_qwen_image_grpo"])
def test_example_workflows_validate(comfy, name):
    workflow = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    prompt = ui_to_api(workflow, comfy.object_info)
    code, body = comfy.queue(prompt)
    assert code == 200 and body.get("node_errors") == {}, body
    entry = comfy.wait(body["prompt_id"], 300)
    if name == "spatialscore_score_images":
        assert entry["status"]["status_str"] == "success", execution_error(entry)
        # out of the box: the built-in shapes scorer and the example picture the pack put into input/
        score_node = next(k for k, v in prompt.items() if v["class_type"] == "SpatialScoreScore")
        scores = [r["mean"] for r in entry["outputs"][score_node]["spatialscore"]]
        assert len(scores) == 4 and scores[0] == max(scores), scores  # the one true layout ranks first
        assert "warning" not in entry["outputs"][score_node]["text"][0]
    else:
        # validated and queued; it then stops at the first model loader, whose weights are empty stand-ins here
        err = execution_error(entry)
        assert err is not None and err["node_type"] in ("UNETLoader", "DualCLIPLoader", "CLIPLoader", "VAELoader"), err


def test_workflow_templates_are_served(comfy):
    templates = comfy.get("/workflow_templates")
    shipped = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "workflows").glob("*.json"))
    assert len(shipped) >= 2 and sorted(templates.get("comfyui-spatialscore", [])) == shipped


def test_builtin_shapes_scorer_ranks_the_true_layout_first(comfy):
    """The pack's own `shapes` scorer, out of the box: a scene's perfect image against 7 re-layouts of it."""
    import random

    from training.dataset.oracle import judge
    from training.dataset.scene import Scene, random_relayout
    from training.dataset.shapes_render import render_shapes

    prompt = "a red circle to the left of a blue square, and the blue square above a green triangle"
    scene = Scene.from_dict({"world": "shapes", "objects": [
        {"id": "a", "category": "circle", "color": "red", "box": [0.08, 0.3, 0.3, 0.52]},
        {"id": "b", "category": "square", "color": "blue", "box": [0.6, 0.1, 0.82, 0.32]},
        {"id": "c", "category": "triangle", "color": "green", "box": [0.55, 0.65, 0.77, 0.87]}],
        "relations": [{"subject": "a", "predicate": "left_of", "objects": ["b"]},
                      {"subject": "b", "predicate": "above", "objects": ["c"]}]})
    rng, scenes = random.Random(5), [scene]
    while len(scenes) < 8:
        moved = random_relayout(scene, rng)
        if moved is not None:
            scenes.append(moved)
    images = [render_shapes(s, size=64).convert("RGBA") for s in scenes]
    images[0].save(comfy.base / "input" / "shapes.png", save_all=True, append_images=images[1:], duration=100,
                   loop=0, disposal=0, blend=0)
    holds = [judge(im.convert("RGB"), prompt).all for im in images]
    assert holds[0] and not all(holds)
    graph = {"1": loader("shapes", batch_size=8),
             "2": {"class_type": "LoadImage", "inputs": {"image": "shapes.png"}},
             "3": {"class_type": "SpatialScoreRerank", "inputs": {
                 "scorer": ["1", 0], "images": ["2", 0], "prompt": prompt, "prompt_mode": "auto", "top_k": 8,
                 "rank_by": "mean", "risk_lambda": 1.0}}}
    entry = run(comfy, graph)
    assert entry["status"]["status_str"] == "success", execution_error(entry)
    ranked = [r["index"] for r in entry["outputs"]["3"]["spatialscore"]]
    print(f"\nshapes scorer ranking {ranked}; oracle holds {holds}")
    assert ranked[0] == 0
    # every image whose layout the oracle accepts outranks every one it rejects
    first_false = min(ranked.index(i) for i in range(8) if not holds[i])
    assert all(ranked.index(i) < first_false for i in range(8) if holds[i])
