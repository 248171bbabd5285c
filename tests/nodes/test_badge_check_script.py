"""The badge browser check says what it is missing and exits, instead of hanging (issue 12)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_wrapper_names_a_missing_comfyui(tmp_path):
    env = dict(os.environ, SPATIALSCORE_COMFYUI=str(tmp_path / "nowhere"))
    out = subprocess.run(["bash", str(ROOT / "scripts" / "comfyui_badge_check.sh"), str(tmp_path / "out")],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "no ComfyUI at" in out.stderr and "scripts/comfyui_setup.sh" in out.stderr


@pytest.mark.real_parts
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_browser_script_without_playwright_says_how_to_get_it(tmp_path):
    env = dict(os.environ, SPATIALSCORE_NODE_MODULES=str(tmp_path / "node_modules"))
    out = subprocess.run(["node", str(ROOT / "scripts" / "comfyui_browser.mjs"), "badge-check", "http://127.0.0.1:9",
                          str(tmp_path)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2
    assert "playwright-core not found" in out.stderr and "comfyui_badge_check.sh" in out.stderr
