"""Replaying schedules on a traced full run: the pick is the pruner's on the traced x0 scores, best-of-M is the
first M candidates, and the pick's finished image is judged by the pixel oracle."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw

from training.bestofn.cli.measure import main
from training.bestofn.replay import load_run, measure, replay
from training.dataset.shapes_render import BACKGROUND_RGB

PROMPT = "a red square to the left of a blue square"
STEPS = 4
# candidate -> x0 score after steps 1..3, then the final score
TRACE = {"0": [0.9, 0.1, 0.1, 0.1], "1": [0.2, 0.8, 0.9, 0.9], "2": [0.5, 0.7, 0.2, 0.2], "3": [0.1, 0.1, 0.1, 0.95]}
RIGHT = {1, 3}  # candidates whose finished image really shows the relation


def _picture(right: bool) -> Image.Image:
    image = Image.new("RGB", (64, 64), BACKGROUND_RGB)
    draw = ImageDraw.Draw(image)
    left, right_colour = ((255, 0, 0), (0, 0, 255)) if right else ((0, 0, 255), (255, 0, 0))
    draw.rectangle((6, 24, 20, 38), fill=left)
    draw.rectangle((42, 24, 56, 38), fill=right_colour)
    return image


@pytest.fixture
def traced_run(tmp_path):
    (tmp_path / "images").mkdir()
    lines = []
    for rank, candidate in enumerate(sorted(TRACE, key=lambda c: -TRACE[c][-1])):
        name = f"images/00000_{rank}.png"
        _picture(int(candidate) in RIGHT).save(tmp_path / name)
        lines.append({"prompt": PROMPT, "image": name, "rank": rank, "score": TRACE[candidate][-1],
                      "candidate": int(candidate)})  # fmt: skip
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    report = {"trace": True, "prune": "none", "n": 4, "keep": 4, "settings": {"num_steps": STEPS},
              "rank_correlation_by_step": [0.1, 0.5, 0.9],
              "per_prompt": [{"prompt": PROMPT, "index": 0, "trace": TRACE}]}  # fmt: skip
    (tmp_path / "report.json").write_text(json.dumps(report))
    return tmp_path


def test_replay_is_the_pruners_decision():
    assert replay(TRACE, 4, "none", STEPS) == 3  # full best-of-4: the best final score
    assert replay(TRACE, 2, "none", STEPS) == 1  # best-of-2: candidates 0 and 1 only
    assert replay(TRACE, 4, "2@0.25", STEPS) == 2  # after step 1 only 0 and 2 survive; 2 ends higher
    assert replay(TRACE, 4, "2@0.5", STEPS) == 1  # after step 2: 1 and 2 survive


def test_measure_judges_the_picks_and_counts_forwards(traced_run):
    result = measure(traced_run, [(1, "none"), (4, "none"), (4, "2@0.25"), (4, "2@0.5")])
    rows = {(r["n"], r["schedule"]): r for r in result["rows"]}
    assert rows[(1, "none")]["oracle_all_ok"] == 0.0  # candidate 0: swapped colours
    assert rows[(4, "none")]["oracle_all_ok"] == 1.0  # candidate 3
    assert rows[(4, "2@0.25")]["oracle_all_ok"] == 0.0  # candidate 2
    assert rows[(4, "2@0.5")]["oracle_all_ok"] == 1.0  # candidate 1
    assert rows[(4, "none")]["forwards_per_prompt"] == 16 and rows[(4, "2@0.5")]["forwards_per_prompt"] == 12
    assert result["rank_correlation_by_step"] == [0.1, 0.5, 0.9]


def test_an_untraced_run_is_refused(traced_run, capsys):
    report = json.loads((traced_run / "report.json").read_text())
    report["trace"] = False
    (traced_run / "report.json").write_text(json.dumps(report))
    with pytest.raises(ValueError, match="not a traced full run"):
        load_run(traced_run)
    assert main([str(traced_run), "--n", "1"]) == 2
    assert "not a traced full run" in capsys.readouterr().err
