"""The pictures the example workflows load, put into ComfyUI's input folder so that they run as they are.

LoadImage only lists ComfyUI's input folder; the score-images example loads `spatialscore_shapes_example.png`
(four frames, loaded as a batch of four: a red circle left of a blue square, then three layouts that break it),
which the built-in `shapes` scorer reads. A file of the same name the user put there is never replaced.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EXAMPLE_INPUTS = ("spatialscore_shapes_example.png", "spatialscore_edit_source.png", "spatialscore_edit_candidates.png")


def install_example_inputs(input_dir: str | Path) -> list[Path]:
    """Copy the example pictures that are missing into `input_dir`; returns what was copied. Never raises for
    an unwritable folder (a read-only install still loads its nodes)."""
    copied = []
    for name in EXAMPLE_INPUTS:
        target = Path(input_dir) / name
        try:
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ASSETS / name, target)
            copied.append(target)
        except OSError:
            continue
    return copied
