"""The shapes-edit world: instructions, edits and their five mistakes, the pixel edit oracle, the resumable build
and `build | check --world shapes-edit`."""

from __future__ import annotations

import json
import random

import pytest

from training.dataset.__main__ import main as dataset_main
from training.dataset.edit.build import build_edit
from training.dataset.edit.edits import APPLIES, MISTAKES, sample_example
from training.dataset.edit.instructions import Instruction, InstructionParseError, parse_instruction
from training.dataset.edit.oracle import judge_edit, shape_of
from training.dataset.edit.scene import Shape, changed_regions, render
from training.dataset.oracle import find_objects


@pytest.mark.parametrize("text", [
    "move the red circle to the left of the blue square",
    "make the green triangle yellow",
    "remove the blue square",
    "add a yellow circle below the red triangle",
    "add an yellow circle above the red triangle",
])
def test_instruction_forms_round_trip(text):
    ins = parse_instruction(text.upper() + ".")
    assert parse_instruction(ins.text) == ins
    assert ins.kind in text.split()[0].replace("make", "recolor")


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("paint the red circle", "cannot read instruction"),
    ("move the red circle to the left of the red square", "must differ"),
    ("make the red circle red", "already has"),
    ("move the purple circle above the red square", "cannot read instruction"),
])
def test_bad_instructions_say_what_is_wrong(text, message):
    with pytest.raises(InstructionParseError, match=message):
        parse_instruction(text)


@pytest.mark.parametrize("mistake", MISTAKES)
def test_every_mistake_of_every_kind_is_caught_and_every_correct_edit_passes(mistake):
    for kind in APPLIES[mistake]:
        rng = random.Random(f"{mistake}-{kind}")
        for _ in range(6):
            ex = sample_example(rng, mistake, kind)
            src, good, bad = (render(s) for s in (ex.source, ex.chosen, ex.rejected))
            ok = judge_edit(ex.instruction, src, good)
            assert ok.followed, (ex, ok)
            wrong = judge_edit(ex.instruction, src, bad)
            assert not wrong.followed, (ex, wrong)
            if mistake == "over_edit":  # an unasked change (when it hits the reference, the edit itself fails too)
                assert wrong.other_changes, wrong
            if mistake == "no_change":
                assert wrong.problems and not wrong.other_changes and not wrong.regions


def test_oracle_reports_what_else_changed_and_where():
    red = Shape("red", "circle", 0.1, 0.1, 0.2)
    blue = Shape("blue", "square", 0.6, 0.6, 0.2)
    green = Shape("green", "triangle", 0.1, 0.6, 0.22)
    source = (red, blue, green)
    moved = Shape("red", "circle", 0.35, 0.1, 0.2)  # now above the blue square, and green recoloured too
    edited = (moved, blue, Shape("yellow", "triangle", 0.1, 0.6, 0.22))
    verdict = judge_edit("move the red circle above the blue square", render(source), render(edited))
    assert verdict.instruction_done and not verdict.followed
    assert any("green object disappeared" in c for c in verdict.other_changes)
    assert any("yellow object appeared" in c for c in verdict.other_changes)
    assert len(verdict.regions) == 3  # red before, red after, the recoloured triangle
    expected = sorted([round(v, 4) for v in s.box] for s in (red, moved, green))
    assert changed_regions(source, edited) == expected
    assert changed_regions(source, source) == []


def test_shapes_are_read_from_pixels():
    scene = (Shape("red", "circle", 0.05, 0.05, 0.2), Shape("blue", "square", 0.4, 0.4, 0.18),
             Shape("green", "triangle", 0.7, 0.1, 0.19))
    found = find_objects(render(scene))
    assert {c: shape_of(found[c]) for c in ("red", "blue", "green")} == {
        "red": "circle", "blue": "square", "green": "triangle"}


def test_source_without_the_named_object_is_not_followed():
    scene = (Shape("red", "circle", 0.05, 0.05, 0.2), Shape("blue", "square", 0.5, 0.5, 0.2))
    verdict = judge_edit(Instruction("remove", ("green", "square")), render(scene), render(scene[1:]))
    assert not verdict.followed and "the source has no green object" in verdict.problems


def _manifest(folder):
    return (folder / "manifest.jsonl").read_text(encoding="utf-8")


def test_build_rows_and_resume_after_a_kill(tmp_path):
    out = tmp_path / "edit"
    summary = build_edit(out, 30, seed=5, progress=False)
    assert summary["pairs"] == 30 and set(summary["by_mistake"]) == set(MISTAKES)
    text = _manifest(out)
    rows = [json.loads(x) for x in text.splitlines()]
    row = rows[0]
    for key in ("instruction", "source", "chosen", "rejected", "edit_kind", "mistake", "edit_region", "split"):
        assert key in row
    assert all((out / r[k]).is_file() for r in rows for k in ("source", "chosen", "rejected"))
    assert oct((out / rows[0]["source"]).stat().st_mode & 0o777) == "0o644"
    # a kill: the last row torn in half, one image of another row gone, a temp file left behind
    lines = text.splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:-1]) + lines[-1][:40], encoding="utf-8")
    (out / rows[3]["chosen"]).unlink()
    (out / rows[3]["chosen"]).parent.joinpath(".x.png.tmp").write_bytes(b"junk")
    again = build_edit(out, 30, seed=5, progress=False)
    assert again["resumed"] == 28 and _manifest(out) == text
    assert not list(out.rglob("*.tmp"))


def test_build_refuses_other_settings_and_foreign_folders(tmp_path):
    from training.dataset.build import BuildError

    out = tmp_path / "edit"
    build_edit(out, 5, seed=1, progress=False)
    with pytest.raises(BuildError, match="other settings"):
        build_edit(out, 5, seed=2, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="not a dataset folder"):
        build_edit(foreign, 5, progress=False)


def test_cli_build_and_check(tmp_path, capsys):
    out = tmp_path / "cli"
    assert dataset_main(["build", "--world", "shapes-edit", "--pairs", "10", "--seed", "3", "--out", str(out),
                         "--no-progress"]) == 0
    assert "by mistake" in capsys.readouterr().out
    row = json.loads(_manifest(out).splitlines()[0])
    src, good, bad = (str(out / row[k]) for k in ("source", "chosen", "rejected"))
    assert dataset_main(["check", "--world", "shapes-edit", "--instruction", row["instruction"], "--source", src,
                         good]) == 0
    assert "followed: yes" in capsys.readouterr().out
    assert dataset_main(["check", "--world", "shapes-edit", "--instruction", row["instruction"], "--source", src,
                         bad, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["followed"] is False
    assert dataset_main(["check", "--world", "shapes-edit", "--instruction", "tidy up", "--source", src, good]) == 2
    assert "cannot read instruction 'tidy up'" in capsys.readouterr().err
    assert dataset_main(["check", "--world", "shapes-edit", "--instruction", row["instruction"], "--source",
                         str(tmp_path / "missing.png"), good]) == 2
    assert "--source: image file not found" in capsys.readouterr().err
    assert dataset_main(["stats", str(out), "--oracle", "--no-progress", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["pairs"] == 10 and stats["oracle_disagreements"] == 0 and sum(stats["by_mistake"].values()) == 10
