"""The frontend extension's pure layout code, run with Node's test runner when Node is installed."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.real_parts
def test_badge_layout_with_node_test_runner():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the frontend layout tests need Node.js (>= 18)")
    out = subprocess.run([node, "--test", str(ROOT / "tests/nodes/web/badge_layout.test.mjs")], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "# fail 0" in out.stdout


def test_extension_imports_the_frontend_app_from_the_served_path():
    # ComfyUI serves WEB_DIRECTORY at /extensions/<pack>/; app.js is at /scripts/app.js
    src = (ROOT / "web/spatialscore_badges.js").read_text()
    assert 'from "../../scripts/app.js"' in src
    assert "SpatialScoreScore" in src and "SpatialScoreRerank" in src and "spatialscore" in src


@pytest.mark.real_parts
def test_grpo_chart_with_node_test_runner():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the frontend chart tests need Node.js (>= 18)")
    out = subprocess.run([node, "--test", str(ROOT / "tests/nodes/web/grpo_chart.test.mjs")], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "# fail 0" in out.stdout


def test_grpo_chart_and_score_text_are_dom_widgets():
    # the Vue node renderer ("Nodes 2.0") never calls onDrawForeground: the chart and the text must be DOM widgets
    src = (ROOT / "web/spatialscore_grpo.js").read_text()
    assert "addDOMWidget" in src and "prototype.onDrawForeground" not in src
    assert '"spatialscore.grpo.progress"' in src and "spatialscore_grpo" in src
    assert "SpatialScoreScore" in src and "output?.text" in src
    # the event names the node sends (nodes/grpo.py imports ComfyUI, so it is read, not imported)
    sent = (ROOT / "nodes/grpo.py").read_text()
    assert 'CHART_EVENT = "spatialscore.grpo.progress"' in sent
    assert 'STATUS_EVENT = "spatialscore.grpo.status"' in sent and '"spatialscore.grpo.status"' in src
    assert "addEventListener(STATUS_EVENT, onStatus)" in src
