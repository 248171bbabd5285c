"""The shipped shapes scorer (`--model shapes`): present, small, and judging pairs built now from a new seed."""

import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from training.reward import load_scorer
from training.reward.models.loading import ASSETS, shipped_scorers
from training.reward.recipes.shapes_eval import accuracy_by_objects, object_fault_accuracy, rerank_accuracy

from .reward_pairs import build_shapes

SHIPPED = ASSETS / "shapes"


@pytest.fixture(scope="module")
def fresh_shapes(tmp_path_factory):
    """300 shapes pairs from a seed no training or evaluation run used (the build is deterministic)."""
    out = tmp_path_factory.mktemp("shapes") / "data"
    return build_shapes(out, 300, 90210)


def test_shapes_is_a_small_self_contained_coords_scorer():
    assert "shapes" in shipped_scorers()
    cfg = json.loads((SHIPPED / "spatialscore.json").read_text())
    assert cfg["backbone"] == "coords" and cfg["weights"] == "full" and cfg["base_model"] is None
    assert {"red", "green", "blue", "yellow", "left", "right", "above", "below"} <= set(cfg["coords"]["vocab"])
    assert sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file()) < 4 * 2**20


def test_shipped_scorer_judges_fresh_held_out_pairs(fresh_shapes):
    result = accuracy_by_objects("shapes", fresh_shapes)
    assert result["all"]["pairs"] == 300
    assert result["all"]["accuracy"] >= 0.9, result
    assert result["objects=3"]["pairs"] >= 100 and result["objects=3"]["accuracy"] >= 0.85, result


def test_score_and_evaluate_accept_the_shipped_name(fresh_shapes, tmp_path):
    row = json.loads((fresh_shapes / "manifest.jsonl").read_text().splitlines()[0])
    out = subprocess.run([sys.executable, "-m", "training.reward", "score", "--model", "shapes", "--prompt",
                          row["prompt"], str(fresh_shapes / row["chosen"]), str(fresh_shapes / row["rejected"]),
                          "--json"], check=True, capture_output=True, text=True)
    scores = json.loads(out.stdout)
    assert [s["mode"] for s in scores] == ["reward", "reward"]
    direct = load_scorer("shapes").score([Image.open(fresh_shapes / row[k]) for k in ("chosen", "rejected")],
                                         row["prompt"])
    assert [s["mean"] for s in scores] == pytest.approx(direct.mean.tolist(), abs=1e-5)
    report = tmp_path / "eval.json"
    subprocess.run([sys.executable, "-m", "training.reward", "evaluate", "--model", "shapes", "--data",
                    str(fresh_shapes), "--split", "all", "--json", str(report)], check=True, capture_output=True)
    result = json.loads(report.read_text())
    assert result["pairs"] == 300 and result["pairwise_accuracy"] >= 0.9
    assert [r["kind"] for r in result["rows"]] == ["SpatialScore"]  # no Qwen2.5-VL base: no baseline rows


def test_shipped_scores_are_deterministic_and_batch_independent(fresh_shapes):
    rows = [json.loads(x) for x in (fresh_shapes / "manifest.jsonl").read_text().splitlines()][:12]
    images = [Image.open(fresh_shapes / r["chosen"]) for r in rows]
    prompts = [r["prompt"] for r in rows]
    together = load_scorer("shapes", batch_size=12).score(images, prompts).mean
    alone = torch.cat([load_scorer("shapes", batch_size=1).score([im], p).mean for im, p in zip(images, prompts, strict=True)])
    assert torch.allclose(together, alone, atol=1e-5)


def test_shipped_scorer_puts_an_oracle_accepted_layout_first_among_eight(fresh_shapes):
    """Best-of-N, as the Rerank node uses it: each scene's perfect image among 7 random re-layouts of it."""
    result = rerank_accuracy("shapes", fresh_shapes, n=8, limit=80)
    assert result["scenes"] == 80
    assert result["top1 all"] >= 0.9 and result["auc"] >= 0.93, result


def test_shapes_gen_judges_pairs_and_never_pays_for_clutter(fresh_shapes):
    """GRPO's reward in the shapes world (the preset's reward.path): held-out pairs as well as a scorer should, and
    the perfect picture above the same scene with an object dropped, recoloured or doubled, or objects added."""
    assert "shapes-gen" in shipped_scorers()
    folder = ASSETS / "shapes-gen"
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < 4 * 2**20
    result = accuracy_by_objects("shapes-gen", fresh_shapes)
    assert result["all"]["pairs"] == 300 and result["all"]["accuracy"] >= 0.9, result
    faults = object_fault_accuracy("shapes-gen", fresh_shapes, limit=100)
    assert faults["all"]["pairs"] >= 450, faults
    for kind, figure in faults.items():
        assert figure["accuracy"] >= 0.97, (kind, faults)
