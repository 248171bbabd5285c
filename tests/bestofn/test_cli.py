"""python -m training.bestofn: bad input gets one line and exit 2; a run writes samples.jsonl and report.json."""

from __future__ import annotations

import json

import pytest

from tests.threads import one_torch_thread
from training.bestofn.__main__ import main


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red circle to the left of a blue square\na green triangle above a yellow square\n")
    return path


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


@pytest.mark.parametrize("extra, words", [
    (["--n", "4", "--keep", "5"], "--keep 5"),
    (["--n", "8", "--prune", "8@0.5"], "must shrink"),
    (["--n", "8", "--prune", "4@0.5,6@0.7"], "does not shrink"),
    (["--n", "8", "--prune", "4@1.2"], "outside (0, 1)"),
    (["--n", "8", "--prune", "4@0"], "outside (0, 1)"),
])
def test_bad_counts_and_schedules(tmp_path, prompts, capsys, extra, words, shapes_generator_dir):
    line = _error(capsys, ["--model", str(shapes_generator_dir), "--scorer", "shapes", "--prompts", str(prompts),
                           "--out", str(tmp_path / "out"), *extra])
    assert words in line
    assert not (tmp_path / "out").exists()


def test_no_prompts(tmp_path, capsys, shapes_generator_dir):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    line = _error(capsys, ["--model", str(shapes_generator_dir), "--scorer", "shapes", "--prompts", str(empty),
                           "--n", "2", "--prune", "none", "--out", str(tmp_path / "out")])
    assert "no prompts" in line and str(empty) in line


def test_scorer_folder_that_is_not_one(tmp_path, prompts, capsys, shapes_generator_dir):
    line = _error(capsys, ["--model", str(shapes_generator_dir), "--scorer", str(shapes_generator_dir),
                           "--prompts", str(prompts), "--n", "2", "--prune", "none", "--out", str(tmp_path / "o")])
    assert str(shapes_generator_dir) in line and "diffusers pipeline" in line
    line = _error(capsys, ["--model", str(shapes_generator_dir), "--scorer", str(tmp_path / "nowhere"),
                           "--prompts", str(prompts), "--n", "2", "--prune", "none", "--out", str(tmp_path / "o")])
    assert "nowhere" in line


def test_model_and_out_errors(tmp_path, prompts, capsys, shapes_generator_dir):
    line = _error(capsys, ["--model", str(tmp_path), "--scorer", "shapes", "--prompts", str(prompts), "--n", "2",
                           "--out", str(tmp_path / "o")])
    assert "--model" in line
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("mine")
    line = _error(capsys, ["--model", str(shapes_generator_dir), "--scorer", "shapes", "--prompts", str(prompts),
                           "--n", "2", "--out", str(busy)])
    assert "not an empty folder" in line


def test_a_pruned_run_writes_its_folder(tmp_path, prompts, shapes_generator_dir):
    out = tmp_path / "best"
    with one_torch_thread():
        assert main(["--model", str(shapes_generator_dir), "--scorer", "shapes", "--prompts", str(prompts),
                     "--n", "4", "--keep", "2", "--prune", "2@0.34", "--num-steps", "3", "--out", str(out),
                     "--oracle"]) == 0
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [(line["prompt"][:7], line["rank"]) for line in lines] == [("a red c", 0), ("a red c", 1),
                                                                      ("a green", 0), ("a green", 1)]
    assert all((out / line["image"]).is_file() for line in lines)
    assert lines[0]["score"] >= lines[1]["score"]
    report = json.loads((out / "report.json").read_text())
    assert report["transformer_forwards"] == 2 * (4 + 2 * 2)
    assert report["decodes"] == report["scores"] == 2 * (4 + 2)
    assert report["wall_time_s"] > 0 and report["oracle_top1"]["oracle_prompts"] == 2
    dropped = report["per_prompt"][0]["dropped"]
    assert len(dropped) == 2 and all(d["step"] == 1 for d in dropped)
    kept_scores = {line["score"] for line in lines[:2]}
    assert all(isinstance(d["score"], float) for d in dropped) and kept_scores
