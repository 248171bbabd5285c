"""Edit pairs that cannot be scored as they are: a source and an edit of different sizes (a resize would score a
correct edit as a wrong one) and edit regions with NaN or out-of-range coordinates get one clear line (exit 2 on
the command line), never a silent resize or clamp."""

from __future__ import annotations

import json
import math
import random

import pytest

from training.reward.__main__ import main as reward_main
from training.reward.edit.judge_parse import parse_judge_output
from training.reward.edit.pairs import load_edit_images, read_edit_pairs
from training.reward.edit.scorer import load_edit_scorer
from training.reward.train.pairs import PairsFileError

from ..threads import one_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def edit_files(tmp_path_factory):
    """A correct shapes edit: source.png and chosen.png at 64x64, a wrong one, and the chosen edit cropped to
    64x48 (what a pipeline that changes the size gives)."""
    from training.dataset.edit.edits import sample_example
    from training.dataset.edit.scene import render

    folder = tmp_path_factory.mktemp("edit-sizes")
    ex = sample_example(random.Random(3), "wrong_direction", "move")
    for name, scene in (("source", ex.source), ("chosen", ex.chosen), ("rejected", ex.rejected)):
        render(scene).convert("RGB").save(folder / f"{name}.png")
    render(ex.chosen).convert("RGB").crop((0, 0, 64, 48)).save(folder / "cropped.png")
    return folder, ex.instruction.text


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def test_score_refuses_an_edit_of_another_size(edit_files, capsys):
    folder, instruction = edit_files
    rc = reward_main(["score", "--model", "shapes-edit", "--source", str(folder / "source.png"), "--prompt",
                      instruction, str(folder / "chosen.png"), str(folder / "cropped.png")])
    assert rc == 2
    line = _error_line(capsys)
    assert f"{folder / 'cropped.png'} is 64x48 but the source {folder / 'source.png'} is 64x64" in line
    assert "(width x height)" in line
    # the same pair in the API, and the same-size pair still scores
    scorer = load_edit_scorer("shapes-edit")
    from PIL import Image

    source, chosen, cropped = (Image.open(folder / f"{n}.png") for n in ("source", "chosen", "cropped"))
    with pytest.raises(ValueError, match="edited image 1 is 64x48 but its source is 64x64"):
        scorer.score(source, [chosen, cropped], instruction)
    assert math.isfinite(float(scorer.score(source, [chosen], instruction).mean[0]))


def test_evaluate_refuses_a_pair_of_another_size(edit_files, tmp_path, capsys):
    folder, instruction = edit_files
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"instruction": instruction, "source": str(folder / "source.png"), "chosen": str(folder / "chosen.png"),
             "rejected": str(folder / r)} for r in ("rejected.png", "cropped.png")]
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(PairsFileError, match=r"edit pair on line 2: 'rejected' .*cropped\.png is 64x48 but "
                                             r"'source' .*source\.png is 64x64"):
        load_edit_images(read_edit_pairs(pairs)[1])
    assert reward_main(["evaluate", "--model", "shapes-edit", "--data", str(pairs), "--split", "all",
                        "--json", str(tmp_path / "eval.json")]) == 2
    assert "line 2: 'rejected'" in _error_line(capsys) and not (tmp_path / "eval.json").exists()


@pytest.mark.parametrize("region, problem", [
    ([[math.nan, 0.1, 0.5, 0.5]], "has NaN or infinite coordinates"),
    ([[0.1, 0.1, math.inf, 0.5]], "has NaN or infinite coordinates"),
    ([[0, 0, 64, 64]], "outside 0..1"),
    ([[0.6, 0.1, 0.2, 0.5]], "x0 > x1"),
])  # fmt: skip
def test_an_unusable_edit_region_is_refused_with_its_line(edit_files, tmp_path, capsys, region, problem):
    folder, instruction = edit_files
    pairs = tmp_path / "pairs.jsonl"
    row = {"instruction": instruction, "source": str(folder / "source.png"), "chosen": str(folder / "chosen.png"),
           "rejected": str(folder / "rejected.png")}
    pairs.write_text(json.dumps({**row, "edit_region": [[0.1, 0.1, 0.5, 0.5]]}) + "\n"
                     + json.dumps({**row, "edit_region": region}) + "\n")  # json writes NaN / Infinity as such
    with pytest.raises(PairsFileError, match=rf"line 2: 'edit_region' must be a list of boxes .*box 0 .*{problem}"):
        read_edit_pairs(pairs)
    assert reward_main(["evaluate", "--model", "shapes-edit", "--data", str(pairs), "--split", "all"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"error: {pairs}: 1 problem(s) in the edit pairs file:" in err
    assert "line 2: 'edit_region' must be a list of boxes [x0, y0, x1, y1] in 0..1: box 0 " in err and problem in err


def test_a_judges_nan_or_infinite_box_is_dropped_not_clamped():
    answer = parse_judge_output('{"edit_regions": [{"box": [NaN, 100, 500, 600]}, {"box": [0, 0, 1e999, 500]}, '
                                '{"box": [100, 200, 300, 400]}], "instruction_success": 7, "over_editing": 1}')
    assert answer.regions == [[0.1, 0.2, 0.3, 0.4]]
