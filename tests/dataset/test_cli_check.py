"""`python -m training.dataset check`: one image and prompt, or a JSONL file of cases; JSON out."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from training.dataset.__main__ import main
from training.dataset.perturb import perturb
from training.dataset.prompts import plain_prompt
from training.dataset.scene import sample_scene
from training.dataset.shapes_render import render_shapes
from training.dataset.worlds import SHAPES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("check")
    scene = sample_scene(SHAPES, random.Random(4))
    while len(scene.relations) < 2:
        scene = sample_scene(SHAPES, random.Random(len(scene.relations) + 40))
    p = perturb(scene, SHAPES, random.Random(0), 1)
    (folder / "imgs").mkdir()
    render_shapes(scene).save(folder / "imgs" / "good.png")
    render_shapes(p.scene).save(folder / "imgs" / "bad.png")
    return folder, plain_prompt(scene), p.changes[0].index


def test_single_image_json(pair, capsys):
    folder, prompt, changed = pair
    assert main(["check", "--world", "shapes", "--prompt", prompt, str(folder / "imgs" / "good.png"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"relations", "all"} and out["all"] is True
    assert [set(r) for r in out["relations"]] == [{"text", "holds"}] * len(out["relations"])
    assert ", ".join(r["text"] for r in out["relations"]).replace(", and ", ", ") == prompt.replace(", and ", ", ")
    assert main(["check", "--prompt", prompt, str(folder / "imgs" / "bad.png"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["all"] is False and [r["holds"] for r in out["relations"]] == [
        i != changed for i in range(len(out["relations"]))]
    assert main(["check", "--prompt", prompt, str(folder / "imgs" / "bad.png")]) == 0
    text = capsys.readouterr().out
    assert "FAILS" in text and text.strip().endswith("all: no")


def test_cases_file_in_order_with_paths_relative_to_it(pair, capsys):
    folder, prompt, _ = pair
    cases = folder / "cases.jsonl"
    lines = [{"image": "imgs/good.png", "prompt": prompt}, {"image": "imgs/bad.png", "prompt": prompt},
             {"image": "imgs/missing.png", "prompt": prompt}, {"image": "imgs/good.png", "prompt": "a cat"},
             {"image": "imgs/good.png", "prompt": prompt}]
    cases.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert main(["check", "--world", "shapes", "--cases", str(cases), "--json"]) == 1  # some lines were bad
    captured = capsys.readouterr()
    results = [json.loads(x) for x in captured.out.splitlines()]
    assert [r["all"] for r in results] == [True, False, False, False, True]  # one object per line, in order
    assert "error" not in results[0] and "not found" in results[2]["error"] and "cannot read" in results[3]["error"]
    assert f"{cases}:3:" in captured.err and f"{cases}:4:" in captured.err


def test_real_command_line(pair):
    folder, prompt, _ = pair
    done = subprocess.run([sys.executable, "-m", "training.dataset", "check", "--world", "shapes", "--prompt", prompt,
                           str(folder / "imgs" / "good.png"), "--json"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["all"] is True


def test_check_errors(pair, capsys):
    folder, prompt, _ = pair
    assert main(["check", "--world", "general", "--prompt", prompt, str(folder / "imgs" / "good.png")]) == 2
    assert "has no pixel oracle" in capsys.readouterr().err
    assert main(["check", "--prompt", prompt, str(folder / "nope.png"), "--json"]) == 2
    assert "image file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["check", "--prompt", prompt])
    assert "needs --prompt TEXT and an IMAGE" in capsys.readouterr().err
