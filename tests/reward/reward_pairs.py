"""Hand-drawn preference pairs for the trainer and evaluator tests (no dependency on the dataset builder).

A chosen image has a red square left of a blue square; its rejected twin has them swapped (1 perturbation) or
swapped and moved vertically (2 perturbations). 64 x 64 pixels, like the shapes world.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ..threads import one_torch_thread

COLOURS = {"red": (220, 40, 40), "blue": (40, 60, 220), "green": (40, 170, 60)}


def _draw(path: Path, boxes: list[tuple[str, int, int]], size: int = 64) -> str:
    img = Image.new("RGB", (size, size), (245, 245, 240))
    d = ImageDraw.Draw(img)
    for colour, x, y in boxes:
        d.rectangle([x, y, x + 14, y + 14], fill=COLOURS[colour])
    img.save(path)
    return path.name


def make_pairs(folder: Path, n: int = 24, seed: int = 0, splits=("train", "val"), name: str = "pairs.jsonl",
               val_every: int = 4, trivial: bool = False) -> Path:
    """Write n pairs (images + a pairs JSONL) into folder; every val_every-th pair is in the second split.

    trivial=True: the rejected image shows a green square instead of the blue one (a colour a model sees at
    once), for checking that training learns at all.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        y1, y2 = rng.randint(5, 40), rng.randint(5, 40)
        x1, x2 = rng.randint(2, 14), rng.randint(36, 46)
        chosen = _draw(folder / f"{i:04d}_c.png", [("red", x1, y1), ("blue", x2, y2)])
        k = 1 + (i % 3 == 2)
        moved = [("red", x2, y1 if k == 1 else 63 - 15 - y1), ("blue", x1, y2)]
        if trivial:
            moved = [("red", x1, y1), ("green", x2, y2)]
        rejected = _draw(folder / f"{i:04d}_r.png", moved)
        relation = {"subject": "red", "predicate": "left_of", "objects": ["blue"]}
        changes = [{"op": "swap", "before": relation}] + ([{"op": "move", "before": {**relation, "predicate": "above"}}]
                                                           if k == 2 else [])
        lines.append({"id": f"p{i}", "prompt": "a red square to the left of a blue square", "chosen": chosen,
                      "rejected": rejected, "perturbations": k, "changes": changes,
                      "split": splits[1] if i % val_every == val_every - 1 else splits[0]})
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return path


def build_shapes(out: Path, pairs: int, seed: int) -> Path:
    """A shapes dataset built now by the real CLI (deterministic in the seed)."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "training.dataset", "build", "--world", "shapes", "--pairs", str(pairs),
                    "--seed", str(seed), "--out", str(out), "--no-progress"], check=True, capture_output=True)
    return out


@pytest.fixture(autouse=True)
def single_thread():
    with one_torch_thread():
        yield
