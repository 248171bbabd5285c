"""The shipped shapes-edit scorer: present and small, its recorded held-out results meet the acceptance bar, and on
fresh edit pairs (scenes it never saw, built here) it prefers the correct edit and finds where it happened."""

from __future__ import annotations

import json

import pytest

from training.reward.edit.folder import shipped_edit_scorers

from ..threads import one_torch_thread


@pytest.fixture(scope="module")
def shipped():
    folders = shipped_edit_scorers()
    assert "shapes-edit" in folders, "training/reward/assets/shapes-edit is missing"
    return folders["shapes-edit"]


def test_is_small_self_contained_and_recorded(shipped):
    size = sum(p.stat().st_size for p in shipped.iterdir())
    assert size < 2_000_000
    cfg = json.loads((shipped / "spatialreward.json").read_text())
    assert cfg["kind"] == "coords" and cfg["instructions"] == "shapes-edit" and cfg["base_model"] is None
    held = cfg["notes"]["heldout"]
    assert held["pairs"] == 1000 and held["pairwise_accuracy"] >= 0.90
    assert set(held["by_mistake"]) == {"wrong_direction", "wrong_object", "over_edit", "no_change", "partial"}
    assert all(v["accuracy"] >= 0.85 for v in held["by_mistake"].values()), held["by_mistake"]
    assert held["region_iou"]["share_at_least_0.5"] >= 0.80


def test_fresh_pairs(shipped, tmp_path):
    from training.dataset.edit.build import build_edit
    from training.reward.edit.evaluate import edit_report
    from training.reward.edit.pairs import load_edit_images, read_edit_pairs
    from training.reward.edit.scorer import load_edit_scorer

    data = tmp_path / "fresh"
    build_edit(data, 150, seed=31337, splits=(0.0, 0.0, 1.0), progress=False)
    pairs = read_edit_pairs(data)
    with one_torch_thread():
        scorer = load_edit_scorer("shapes-edit", device="cpu", batch_size=100)
        imgs = [load_edit_images(p) for p in pairs]
        result = scorer.score([s for s, _, _ in imgs] * 2, [c for _, c, _ in imgs] + [r for _, _, r in imgs],
                              [p.instruction for p in pairs] * 2)
    n = len(pairs)
    report = edit_report(pairs, (result.mean[:n] - result.mean[n:]).numpy(), result.regions[:n])
    print(f"\nfresh shapes-edit pairs: {report['pairwise_accuracy']:.3f}, IoU >= 0.5 on "
          f"{report['region_iou']['share_at_least_0.5']:.3f} of correct edits")
    assert report["pairwise_accuracy"] >= 0.88
    assert report["region_iou"]["share_at_least_0.5"] >= 0.75
