"""The Evaluate node's win-rate badge in the frontend: its pure text/colour/place code under Node's test runner, and
the extension drawing it in both renderers (canvas hook and a DOM element for the Vue nodes)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.real_parts
def test_evaluate_badge_with_node_test_runner():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the frontend badge tests need Node.js (>= 18)")
    out = subprocess.run([node, "--test", str(ROOT / "tests/nodes/web/evaluate_badge.test.mjs")], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "# fail 0" in out.stdout


def test_the_extension_reads_the_nodes_record_in_both_renderers():
    src = (ROOT / "web/spatialscore_evaluate.js").read_text()
    assert 'from "../../scripts/app.js"' in src and '"SpatialScoreEvaluate"' in src
    assert "spatialscore_evaluate" in src and "prototype.onDrawForeground" in src and "everyVueTick" in src
    sent = (ROOT / "nodes/evaluate.py").read_text()
    assert '"spatialscore_evaluate": [badge(report)]' in sent
