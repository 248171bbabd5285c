"""The shapes scorer recipe's data stages: every source's rows in one file, validation rows from every source."""

import json

from training.reward.recipes.shapes import combine_pairs


def test_combine_pairs_keeps_every_row_once_and_mixes_the_sources(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"id": f"a{i}", "split": "val"}) + "\n" for i in range(200)))
    b.write_text("".join(json.dumps({"id": f"b{i}", "split": "val"}) + "\n" for i in range(50)) + "\n")
    result = combine_pairs([a, b], tmp_path / "all")
    ids = [json.loads(x)["id"] for x in result.read_text().splitlines()]
    assert sorted(ids) == sorted([f"a{i}" for i in range(200)] + [f"b{i}" for i in range(50)])
    # the trainer validates on the first val rows: they must not all come from the first source
    assert any(i.startswith("b") for i in ids[:50])
    mtime = result.stat().st_mtime_ns
    assert combine_pairs([a], tmp_path / "all") == result and result.stat().st_mtime_ns == mtime  # done: skipped
    assert combine_pairs([a, b], tmp_path / "again").read_text() == result.read_text()  # seeded


def test_recipe_refuses_stages_without_what_they_need_before_doing_anything(tmp_path, capsys):
    import pytest

    from training.recipes.shapes_scorer import main

    for argv, needs in ((["--clean-first-steps", "10"], "--object-faults"),
                        (["--object-faults", "1", "--onpolicy-steps", "5"], "--clean-first-steps"),
                        (["--object-faults", "-1"], ">= 0")):
        with pytest.raises(SystemExit) as stop:
            main(["--out", str(tmp_path / "run"), *argv])
        assert stop.value.code == 2 and needs in capsys.readouterr().err
        assert not (tmp_path / "run").exists()  # refused before any stage
