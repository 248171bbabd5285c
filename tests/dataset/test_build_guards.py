"""Dataset builds lose nothing and accept nothing that cannot be resumed (issue 12, items 7 and 10)."""

from __future__ import annotations

import json
import math

import pytest

from training.dataset.__main__ import main
from training.dataset.build import BuildError
from training.dataset.config import ConfigError
from training.dataset.stats import dataset_stats

from .helpers import quiet_build, shapes_config


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "ds"
    quiet_build(shapes_config(out, pairs=6))
    return out


@pytest.mark.parametrize("content", [["images/x.png"], [".notes.tmp"], ["images/", ".hidden"]])
def test_images_or_dot_entries_without_build_json_are_someone_elses(tmp_path, content):
    out = tmp_path / "ds"
    for name in content:
        path = out / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("the user's")
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    with pytest.raises(BuildError, match="is not empty and is not a dataset folder"):
        quiet_build(shapes_config(out, pairs=2))
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before  # nothing deleted


@pytest.mark.parametrize("left", [".build.json.42a7e82c.tmp", ".write-test-4242"])
def test_killed_while_writing_build_json_resumes(tmp_path, left):
    """A kill between writing build.json's temp file and renaming it (or between writing and removing the write
    probe) leaves only that file (and .lock): the folder is still ours and empty, so the rerun builds and leaves no
    temp behind."""
    out = tmp_path / "ds"
    out.mkdir()
    (out / ".lock").write_text("")
    (out / left).write_text('{"identity": {')  # torn
    summary = quiet_build(shapes_config(out, pairs=2))
    assert summary["pairs"] == 2
    assert (out / "build.json").exists() and not list(out.rglob("*.tmp")) and not list(out.glob(".write-test-*"))


@pytest.mark.parametrize("field, value", [("splits", (math.nan, 0.5, 0.5)), ("verify_margin", math.nan),
                                          ("verify_margin", math.inf)])
def test_non_finite_splits_and_margin_are_refused(tmp_path, field, value):
    with pytest.raises(ConfigError, match=field):
        shapes_config(tmp_path / "ds", **{field: value})


def test_fewer_pairs_than_the_folder_holds_is_refused_not_ignored(tmp_path, small, capsys):
    import shutil

    out = shutil.copytree(small, tmp_path / "ds")
    rc = main(["build", "--world", "shapes", "--pairs", "2", "--seed", "3", "--out", str(out), "--no-progress",
               "--chunk", "16"])
    assert rc == 2 and "already holds 6 pairs, more than --pairs 2" in capsys.readouterr().err
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 6


def test_resume_remakes_a_corrupt_png(tmp_path, small):
    import shutil

    from PIL import Image

    out = shutil.copytree(small, tmp_path / "ds")
    row = json.loads((out / "manifest.jsonl").read_text().splitlines()[2])
    image = out / row["chosen"]
    image.write_bytes(image.read_bytes()[: image.stat().st_size // 2])  # truncated, not empty
    summary = quiet_build(shapes_config(out, pairs=6))
    assert any("corrupt or truncated" in line and row["chosen"] in line for line in summary["logs"])
    assert summary["pairs"] == 6
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    for r in rows:
        for key in ("chosen", "rejected"):
            with Image.open(out / r[key]) as img:
                img.load()  # every image decodes


def test_stats_oracle_reports_every_unreadable_image(tmp_path, small):
    import shutil

    out = shutil.copytree(small, tmp_path / "ds")
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    for r in rows[:2]:
        (out / r["rejected"]).write_bytes(b"not a png")
    summary = dataset_stats(out, oracle=True, progress=False)
    recheck = summary["oracle_recheck"]
    assert recheck["skipped_unreadable"] == 2 and recheck["checked"] == 4
    assert [u.split(":")[0] for u in recheck["unreadable"]] == [rows[0]["id"], rows[1]["id"]]
