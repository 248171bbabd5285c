"""Shapes-world builds: manifest contents, splits, determinism, resume after crashes, corrupt lines, bad input."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from training.dataset.__main__ import main
from training.dataset.build import BuildError
from training.dataset.config import BuildConfig, ConfigError
from training.dataset.manifest import JsonlAppender, load_manifest
from training.dataset.oracle import judge
from training.dataset.stats import dataset_stats

from .helpers import quiet_build, shapes_config, snapshot


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 40-pair build; crash/resume tests must end with exactly this."""
    out = tmp_path_factory.mktemp("ref") / "ds"
    summary = quiet_build(shapes_config(out))
    return out, summary, snapshot(out)


def test_manifest_rows_images_and_splits(reference):
    out, summary, _ = reference
    raw = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(raw) == 40 and len({r["id"] for r in raw}) == 40
    for r in raw:
        for key in ("id", "prompt", "perturbed_prompt", "chosen", "rejected", "perturbations", "changed",
                    "relation_types", "generator", "seeds", "split", "scene", "perturbed_scene"):
            assert key in r
        assert not r["chosen"].startswith("/") and (out / r["chosen"]).is_file()  # relative to DIR
        assert (out / r["rejected"]).is_file() and r["chosen"] != r["rejected"]
        assert Image.open(out / r["chosen"]).size == (64, 64)
        assert 1 <= r["perturbations"] == len(r["changed"]) == len(r["relation_types"]) <= 3
        assert r["prompt"] != r["perturbed_prompt"] and r["generator"] == "shapes"
        assert set(r["seeds"]) == {"chosen", "rejected"} and all(isinstance(v, int) for v in r["seeds"].values())
        assert r["split"] in ("train", "val", "test")
        for c in r["changed"]:
            assert c["op"] in ("flip", "swap", "replace", "move") and c["before"] != c["after"]
        # The images are what the rows say: independent re-judgement from the files.
        assert judge(out / r["chosen"], r["prompt"]).all
        holds = judge(out / r["rejected"], r["prompt"]).holds
        assert [not h for h in holds] == [i in {c["index"] for c in r["changed"]} for i in range(len(holds))]
    scene_split = {}
    for r in raw:
        assert scene_split.setdefault(r["scene_id"], r["split"]) == r["split"]  # a scene never straddles splits
    assert summary["pairs"] == 40 and summary["scenes_in_several_splits"] == 0
    assert summary["prompts_in_several_splits"] == 0
    assert summary["oracle"] == {"checked": 40, "chosen_confirmed": 40, "rejected_rejected": 40}
    assert not (out / "dropped.jsonl").exists()
    assert not list(out.rglob("*.tmp"))
    referenced = {r[k] for r in raw for k in ("chosen", "rejected")}
    assert {p.relative_to(out).as_posix() for p in out.rglob("*.png")} == referenced  # no orphans


def test_splits_follow_fractions_and_never_share_a_prompt(tmp_path):
    summary = quiet_build(shapes_config(tmp_path / "ds", pairs=300, chunk_pairs=300, splits=(0.5, 0.25, 0.25)))
    by = summary["by_split"]
    assert set(by) == {"train", "val", "test"} and by["train"] > by["val"] > 0
    assert summary["prompts_in_several_splits"] == 0 and summary["scenes_in_several_splits"] == 0
    assert set(summary["by_perturbations"]) == {"1", "2", "3"}
    assert set(summary["by_operation"]) == {"flip", "swap", "replace", "move"}


def test_same_arguments_same_bytes_and_pairs_can_grow(tmp_path, reference):
    _, _, ref = reference
    other = tmp_path / "again"
    quiet_build(shapes_config(other, chunk_pairs=7))  # other chunking, same result
    assert snapshot(other) == ref
    quiet_build(shapes_config(other, pairs=55))
    grown = (other / "manifest.jsonl").read_bytes()
    assert grown.startswith(ref["manifest"]) and grown.count(b"\n") == 55
    fresh = tmp_path / "fresh"
    quiet_build(shapes_config(fresh, pairs=55))
    assert snapshot(fresh) == snapshot(other)


def test_rerun_with_other_settings_is_refused(tmp_path):
    from training.dataset.build import check_identity, prepare_out

    out = tmp_path / "ds"
    quiet_build(shapes_config(out, pairs=4))
    with pytest.raises(BuildError, match=r"other settings \(seed: was 3, now 4\)"):
        quiet_build(shapes_config(out, pairs=4, seed=4))
    # A first run that died before making anything does not pin its settings.
    empty = tmp_path / "empty"
    prepare_out(empty)
    check_identity(empty, shapes_config(empty, seed=9))
    assert quiet_build(shapes_config(empty, pairs=2))["pairs"] == 2


def test_crash_between_images_and_rows_then_resume(tmp_path, reference, monkeypatch):
    _, _, ref = reference
    out = tmp_path / "ds"
    calls = {"n": 0}
    real_append = JsonlAppender.append

    def dying_append(self, rows):
        if self.path.name == "manifest.jsonl" and rows:
            calls["n"] += 1
            if calls["n"] == 2:  # the second chunk's images are on disk, its rows never get written
                raise RuntimeError("simulated crash")
        real_append(self, rows)

    monkeypatch.setattr(JsonlAppender, "append", dying_append)
    with pytest.raises(RuntimeError, match="simulated crash"):
        quiet_build(shapes_config(out))
    monkeypatch.setattr(JsonlAppender, "append", real_append)
    assert (out / "manifest.jsonl").read_text().count("\n") == 16
    assert len(list(out.rglob("*.png"))) > 16  # orphaned images of the lost chunk
    quiet_build(shapes_config(out))
    assert snapshot(out) == ref


def test_resume_repairs_torn_tail_corrupt_lines_missing_images_and_leftovers(tmp_path, reference, capsys):
    src, _, ref = reference
    out = tmp_path / "ds"
    shutil.copytree(src, out)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    victim = json.loads(lines[5])
    (out / victim["rejected"]).unlink()  # a row whose image is gone: remade, not kept
    lines[2] = "{not json\n"  # a corrupt line in the middle
    lines[7] = json.dumps(dict(json.loads(lines[7]), chosen=5)) + "\n"  # valid JSON, nonsense row
    torn = lines[-1][: len(lines[-1]) // 2]  # a write cut short
    (out / "manifest.jsonl").write_text("".join(lines[:-1]) + torn)
    (out / "images" / "0000" / ".s0000001_c0.png.99.tmp").write_bytes(b"partial")
    (out / "images" / "0000" / "s0000999-p0_r000000000000.png").write_bytes(b"orphan")

    stats = dataset_stats(out, progress=False)
    err = capsys.readouterr().err
    assert "manifest.jsonl:3: not valid JSON" in err and "manifest.jsonl:40: incomplete last line" in err
    assert "manifest.jsonl:8: wrong type(s): chosen should be str" in err
    assert stats["pairs"] == 37 and stats["bad_lines"] == [3, 8, 40]  # reported, skipped, not fatal

    summary = quiet_build(shapes_config(out))
    logs = "\n".join(summary["logs"])
    assert "image(s) missing" in logs and victim["rejected"] in logs
    assert snapshot(out) == ref


def test_oracle_drops_are_recorded_and_not_retried(tmp_path, monkeypatch):
    import training.dataset.worker as worker

    real = worker.oracle_check_rejected
    monkeypatch.setattr(worker, "oracle_check_rejected", lambda objs, sp, pp: pp.k == 0 and real(objs, sp, pp))
    out = tmp_path / "ds"
    summary = quiet_build(shapes_config(out, pairs=10))
    rows = load_manifest(out)
    assert len(rows) == 10 and all(r["id"].endswith("-p0") for r in rows)
    dropped = [json.loads(x) for x in (out / "dropped.jsonl").read_text().splitlines()]
    assert summary["dropped"] == len(dropped) >= 9 and all(d["id"].endswith("-p1") for d in dropped)
    before = snapshot(out)
    monkeypatch.setattr(worker, "oracle_check_rejected", lambda *a: pytest.fail("a finished build re-verified"))
    quiet_build(shapes_config(out, pairs=10))
    assert snapshot(out) == before


def test_second_build_on_the_same_folder_is_refused(tmp_path):
    import fcntl

    out = tmp_path / "ds"
    quiet_build(shapes_config(out, pairs=2))
    with open(out / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        with pytest.raises(BuildError, match="another build is writing"):
            quiet_build(shapes_config(out, pairs=4))


def test_bad_input_gets_clear_errors(tmp_path, capsys):
    with pytest.raises(ConfigError, match="unknown world 'mars'"):
        BuildConfig(out=tmp_path / "x", world="mars")
    with pytest.raises(ConfigError, match="world 'general' has no renderer"):
        BuildConfig(out=tmp_path / "x", world="general")
    with pytest.raises(ConfigError, match="pairs: expected a positive integer"):
        BuildConfig(out=tmp_path / "x", pairs=0)
    with pytest.raises(ConfigError, match="not readable by the shapes oracle"):
        BuildConfig(out=tmp_path / "x", prompt_style="long")

    with pytest.raises(SystemExit):
        main(["build", "--world", "mars", "--out", str(tmp_path / "x")])
    assert "invalid choice: 'mars'" in capsys.readouterr().err

    missing = tmp_path / "no-such-model"
    assert main(["build", "--generator", str(missing), "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert f"generator folder not found: {missing}" in err and not (tmp_path / "g").exists()

    (tmp_path / "afile").write_text("x")
    assert main(["build", "--pairs", "2", "--out", str(tmp_path / "afile" / "ds")]) == 2
    assert "cannot create output folder" in capsys.readouterr().err

    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        rc = main(["build", "--pairs", "2", "--no-progress", "--out", str(readonly)])
        if rc == 2:
            assert "is not writable" in capsys.readouterr().err
        else:  # root ignores permissions: the folder really is writable, the build succeeds
            assert (readonly / "manifest.jsonl").is_file()
    finally:
        readonly.chmod(0o700)

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    assert main(["build", "--pairs", "2", "--out", str(foreign)]) == 2
    assert "not a dataset folder" in capsys.readouterr().err


def test_stats_command(reference, capsys, tmp_path):
    out, _, _ = reference
    assert main(["stats", str(out), "--preview", str(tmp_path / "sheet.png"), "--preview-pairs", "3"]) == 0
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.format == "PNG" and sheet.height > 3 * 160
    capsys.readouterr()
    assert main(["stats", str(out), "--oracle", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "pairs: 40" in text and "by split:" in text and "by perturbation count:" in text
    assert "changed relation types:" in text and "by generator: shapes 40" in text
    assert "chosen confirmed 40/40, rejected fail the prompt 40/40, rejected fail exactly the changed relations 40/40" in text
    assert main(["stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 40
    assert main(["stats", str(out / "nope")]) == 2
    assert "no manifest.jsonl" in capsys.readouterr().err
