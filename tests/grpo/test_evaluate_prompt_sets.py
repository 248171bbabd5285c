"""The shipped public prompt sets parse with their published counts; users' files in each format are read and
detected; relation words and object counts; each shipped file has its licence and source."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter

import pytest

from training.grpo.evaluate.benches import BENCHES, DATA, load_bench, load_prompt_set
from training.grpo.evaluate.formats import detect_format, read_geneval, read_items, read_unigenbench
from training.grpo.evaluate.relations import object_count, relation_words
from training.grpo.prompts import PromptFileError


def test_geneval_has_553_prompts_of_which_100_position():
    every = read_geneval(DATA / "geneval_evaluation_metadata.jsonl", tag=None)
    assert len(every) == 553
    position = load_bench("geneval-position")
    assert len(position) == 100 and {i.category for i in position} == {"position"}
    assert all(i.objects == 2 for i in position)
    assert position[0].prompt == "a photo of a dog right of a teddy bear"


def test_t2i_compbench_spatial_has_300_two_object_prompts():
    items = load_bench("t2i-compbench-spatial")
    assert len(items) == 300
    # what benches.py states for the set: "a/an X <relation> a/an Y" on every line
    assert all(len(re.findall(r"\b(a|an)\b", i.prompt)) == 2 and re.match(r"(a|an) ", i.prompt) for i in items)
    assert {i.objects for i in items} == {2}


def test_unigenbench_has_600_prompts_68_two_d_and_66_three_d_layout():
    assert len(read_unigenbench(DATA / "unigenbench_test_prompts_en.csv", layout_only=False)) == 600
    layout = load_bench("unigenbench-layout")
    assert Counter(i.category for i in layout) == {"2-D layout": 68, "3-D layout": 66}


def test_dpg_bench_has_1065_prompts_with_their_ids():
    items = load_bench("dpg")
    assert len(items) == 1065 and len({i.source_id for i in items}) == 1065
    assert {"0", "partiprompts100"} <= {i.source_id for i in items}


def test_shapes_heldout_is_the_sample_eval_prompt_list():
    from training.grpo.prompts import load_prompts

    assert [i.prompt for i in load_bench("shapes-heldout")] == load_prompts(BENCHES["shapes-heldout"].path)


def test_every_shipped_set_has_its_licence_source_and_commit():
    readme = (DATA / "README.md").read_text()
    for licence in ("geneval_MIT.txt", "t2i_compbench_MIT.txt", "unigenbench_CC-BY-4.0.txt", "dpg_bench_Apache-2.0.txt"):
        assert (DATA / "licenses" / licence).is_file() and f"licenses/{licence}" in readme
    for name, bench in BENCHES.items():
        if name != "shapes-heldout":
            assert bench.path.name in readme and f"`{name}`" in readme
    assert re.findall(r"at `([0-9a-f]{40})`", readme).__len__() == 4
    assert "TIIF-Bench" in readme and not any("tiif" in p.name.lower() for p in DATA.rglob("*"))


def test_users_files_in_each_format(tmp_path):
    geneval = tmp_path / "meta.jsonl"
    geneval.write_text("\n".join(json.dumps(r) for r in [
        {"tag": "position", "include": [{"class": "cup", "count": 1}, {"class": "cat", "count": 1,
                                                                         "position": ["left of", 0]}],
         "prompt": "a photo of a cat left of a cup"},
        {"tag": "counting", "include": [{"class": "cup", "count": 3}], "prompt": "a photo of three cups"}]) + "\n")
    tiif = tmp_path / "2d_spatial_relation_prompts.jsonl"
    tiif.write_text(json.dumps({"type": "2d_spatial_relation", "short_description": "A lamp stands left of a sofa.",
                                "long_description": "In a quiet room, a tall lamp stands to the left of a sofa."}) + "\n")
    unigen = tmp_path / "test_prompts_en.csv"
    with unigen.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "prompt_en", "sub_dims_en"])
        writer.writerow([0, "A kite above a red barn.", json.dumps({"Testpoints": ["Entity Layout - Two-Dimensional Space"]})])
        writer.writerow([1, "A watercolour fox.", json.dumps({"Testpoints": ["Style"]})])
    dpg_csv = tmp_path / "dpg_bench.csv"
    with dpg_csv.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item_id", "text", "keywords", "proposition_id", "dependency", "category_broad"])
        writer.writerow(["7", "A mug on a desk next to a plant.", "mug", 1, 0, "entity"])
        writer.writerow(["7", "A mug on a desk next to a plant.", "desk", 2, 0, "relation"])
        writer.writerow(["9", "Two boats under a bridge.", "boat", 1, 0, "entity"])
    dpg_dir = tmp_path / "prompts"
    dpg_dir.mkdir()
    (dpg_dir / "b1.txt").write_text("A bird behind a fence.\n")
    (dpg_dir / "a1.txt").write_text("  A chair in front of a table. \n")
    text = tmp_path / "spatial.txt"
    text.write_text("a dog on the left of a bench\n\na cup on the top of a book\n")

    expected = {geneval: ("geneval", ["a photo of a cat left of a cup"]),
                tiif: ("tiif", ["A lamp stands left of a sofa."]),
                unigen: ("unigenbench", ["A kite above a red barn."]),
                dpg_csv: ("dpg", ["A mug on a desk next to a plant.", "Two boats under a bridge."]),
                dpg_dir: ("dpg", ["A chair in front of a table.", "A bird behind a fence."]),
                text: ("text", ["a dog on the left of a bench", "a cup on the top of a book"])}  # fmt: skip
    for path, (fmt, prompts) in expected.items():
        assert detect_format(path) == fmt, path
        assert [i.prompt for i in read_items(path)] == prompts, path
    assert read_items(geneval)[0].objects == 2
    what, items = load_prompt_set(prompts=dpg_csv, limit=1)
    assert len(items) == 1 and "the first 1 of 2" in what


@pytest.mark.parametrize("content, suffix, message", [
    ("index,prompt\n0,a cat\n", ".csv", "expected UniGenBench"),
    ('{"tag": "color_attr", "include": [], "prompt": "a red cup"}\n', ".jsonl", "no prompts of the spatial kind"),
    ("{not json\n", ".jsonl", "not valid JSON"),
])  # fmt: skip
def test_files_that_are_not_a_prompt_set_are_refused_with_one_line(tmp_path, content, suffix, message):
    path = tmp_path / f"x{suffix}"
    path.write_text(content)
    with pytest.raises(PromptFileError, match=message):
        read_items(path)


def test_relation_words_fold_wordings_and_skip_non_spatial_uses():
    assert relation_words("a red circle to the left of a blue square, and a green square below the red circle") == [
        "left of", "below"]
    assert relation_words("a mouse on side of a key") == ["next to"]
    assert relation_words("a girl on the top of a frog") == ["above"]
    assert relation_words("a cup on a table beside a lamp") == ["on", "next to"]
    assert relation_words("a sale on display, made by hand") == []


def test_object_counts_from_the_source_or_the_shapes_oracle_else_unknown():
    assert object_count("a photo of a dog right of a teddy bear", 2) == 2
    assert object_count("a blue square above a red circle, and a green triangle above the red circle") == 3
    assert object_count("a giraffe next to a lamp") is None
