"""Released node ids, inputs and outputs against the committed snapshot (tests/nodes/fixtures/node_schema.json).

The live check against a running ComfyUI is in test_comfyui_integration.py; here the rules themselves, and the
snapshot against the /object_info the real frontend was built from (fixtures/object_info.json)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from nodes.logic.schema_compat import incompatible_changes, snapshot

FIXTURES = Path(__file__).parent / "fixtures"
RELEASED = json.loads((FIXTURES / "node_schema.json").read_text())


def test_the_snapshot_holds_the_released_nodes():
    assert set(RELEASED) >= {"SpatialScoreLoader", "SpatialScoreScore", "SpatialScoreRerank"}
    assert incompatible_changes(RELEASED, snapshot(json.loads((FIXTURES / "object_info.json").read_text()))) == []


def _edit(change):
    current = copy.deepcopy(RELEASED)
    change(current)
    return incompatible_changes(RELEASED, current)


@pytest.mark.parametrize("change, expected", [
    (lambda s: s.pop("SpatialScoreScore"), "SpatialScoreScore: node removed or renamed"),
    (lambda s: s["SpatialScoreRerank"]["inputs"].update(k=s["SpatialScoreRerank"]["inputs"].pop("top_k")),
     "input 'top_k' removed or renamed"),
    (lambda s: s["SpatialScoreLoader"]["inputs"]["batch_size"].update(type="FLOAT"),
     "input 'batch_size' changed type INT -> FLOAT"),
    (lambda s: s["SpatialScoreRerank"]["inputs"]["latent"].update(required=True), "input 'latent' became required"),
    (lambda s: s["SpatialScoreLoader"]["inputs"]["dtype"]["options"].remove("fp16"), "lost choices ['fp16']"),
    (lambda s: s["SpatialScoreScore"]["inputs"].update(extra={"type": "INT", "required": True}),
     "new input 'extra' is required"),
    (lambda s: s["SpatialScoreScore"]["outputs"].pop(0), "output 0 changed"),
    (lambda s: s["SpatialScoreScore"]["outputs"][1].update(type="INT"), "output 1 changed"),
    (lambda s: s["SpatialScoreScore"]["outputs"][0].update(name="score"), "output 0 changed"),
])  # fmt: skip
def test_incompatible_changes_are_caught(change, expected):
    problems = _edit(change)
    assert any(expected in p for p in problems), problems


def test_additions_are_compatible():
    def add(s):
        s["SpatialScoreNewNode"] = {"inputs": {"x": {"type": "INT", "required": True}}, "outputs": []}
        s["SpatialScoreScore"]["inputs"]["extra"] = {"type": "INT", "required": False}
        s["SpatialScoreLoader"]["inputs"]["dtype"]["options"].append("fp8")
        s["SpatialScoreRerank"]["outputs"].append({"name": "report", "type": "STRING", "is_list": False})

    assert _edit(add) == []
