"""Every test file that needs a real part (ComfyUI, Chromium, node, playwright-core) carries the real_parts marker,
so that `make test-integration` runs it with the part installed instead of letting it skip unseen."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDS_A_PART = re.compile(r"find_comfyui\(|import_comfy\(|find_tools\(|which\(\"node\"\)|chromium|playwright")


def test_every_file_that_needs_a_real_part_is_marked():
    unmarked = []
    for d in ("tests", "research/tests"):
        for path in sorted((ROOT / d).rglob("test_*.py")):
            text = path.read_text(encoding="utf-8")
            if path.name != Path(__file__).name and NEEDS_A_PART.search(text) and "pytest.mark.real_parts" not in text:
                unmarked.append(str(path.relative_to(ROOT)))
    assert not unmarked, f"mark the tests that need a real part with @pytest.mark.real_parts: {unmarked}"
