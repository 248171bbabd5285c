"""The review page's queue logic (filters, resume position, counts) with Node's test runner, when Node is there."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.real_parts
def test_review_queue_with_node_test_runner():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the review page's script tests need Node.js (>= 18)")
    out = subprocess.run([node, "--test", str(ROOT / "tests/dataset/web/review_queue.test.mjs")], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "# fail 0" in out.stdout and "# pass 4" in out.stdout
