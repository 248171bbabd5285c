"""The generative edit judge: aggregation (against hand-computed values), robust parsing, and the whole path on tiny
random Qwen2.5-VL and Qwen3-VL chat models built offline."""

from __future__ import annotations

import json

import pytest

from training.reward.edit.aggregate import Aggregation, aggregate
from training.reward.edit.judge_parse import parse_judge_output

from ..threads import one_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_torch_thread():
        yield


def test_default_aggregation_matches_hand_computed_values():
    # success 8/10, over-editing 6/10, naturalness 9/10, artifacts 7/10:
    #   semantic = 0.8^0.6 * 0.6^0.4 = 0.874690 * 0.815193 = 0.713041
    #   quality  = 0.9^0.5 * 0.7^0.5 = sqrt(0.63)          = 0.793725
    #   reward   = 0.713041^0.8 * 0.793725^0.2             = 0.762942 * 0.954842 = 0.728493
    scores = {"instruction_success": 8, "over_editing": 6, "naturalness": 9, "artifacts": 7}
    assert aggregate(scores) == pytest.approx(0.728493, abs=1e-6)
    # without the quality pass: 0.713041^0.8 = 0.762942
    assert aggregate({"instruction_success": 8, "over_editing": 6}) == pytest.approx(0.762942, abs=1e-6)


def test_aggregation_is_configurable():
    # equal semantic weights, no exponent on it, quality off: sqrt(0.5 * 0.2) = 0.316228
    agg = Aggregation.from_dict({"success_weight": 1, "over_editing_weight": 1, "semantic_exponent": 1,
                                 "quality_exponent": 0})
    scores = {"instruction_success": 5, "over_editing": 2, "naturalness": 1, "artifacts": 1}
    assert aggregate(scores, agg) == pytest.approx(0.316228, abs=1e-6)
    # another score scale: 80 / 100 and 60 / 100 are the defaults' 8 and 6
    hundred = Aggregation(score_max=100)
    assert aggregate({"instruction_success": 80, "over_editing": 60}, hundred) == pytest.approx(0.762942, abs=1e-6)
    assert aggregate({"instruction_success": 0, "over_editing": 10}) == 0.0  # a failed edit gets nothing
    assert aggregate({"over_editing": 10}) is None  # nothing to say without the success score
    with pytest.raises(ValueError, match="unknown fields"):
        Aggregation.from_dict({"sucess_weight": 1})
    with pytest.raises(ValueError, match=">= 0"):
        Aggregation(semantic_exponent=-1)


def test_parser_reads_well_formed_json():
    text = ('```json\n{"edit_regions": [{"box": [100, 200, 300, 400], "label": "the cat"}], "reasoning": "moved", '
            '"instruction_success": 8, "over_editing": 6}\n```')
    a = parse_judge_output(text)
    assert a.ok and not a.problems
    assert a.scores == {"instruction_success": 8.0, "over_editing": 6.0}
    assert a.regions == [[0.1, 0.2, 0.3, 0.4]] and a.labels == ["the cat"] and a.reasoning == "moved"


@pytest.mark.parametrize(("text", "scores", "regions"), [
    # single quotes, an unquoted key, trailing commas, a score as text, cut off before the end
    ("Sure! {'edit_regions': [{'box': [100,200,300,400],}], reasoning: 'x', 'instruction_success': '7/10', "
     "'over_editing': 9,", {"instruction_success": 7.0, "over_editing": 9.0}, [[0.1, 0.2, 0.3, 0.4]]),
    # more text after the object, with braces of its own
    ('{"instruction_success": 5, "over_editing": 4} Hope this helps {x}', {"instruction_success": 5.0,
                                                                          "over_editing": 4.0}, []),
    # no JSON at all: scores and boxes by pattern; reversed box corners; out-of-range score clipped
    ("instruction_success: 3, over_editing = 12; region [500, 500, 0, 0]", {"instruction_success": 3.0,
                                                                             "over_editing": 10.0},
     [[0.0, 0.0, 0.5, 0.5]]),
    # nested scores, other key names, Python literals
    ('{"scores": {"success": 6, "preservation": 7}, "boxes": [[0, 0, 1000, 1000]], "ok": True}',
     {"instruction_success": 6.0, "over_editing": 7.0}, [[0.0, 0.0, 1.0, 1.0]]),
])
def test_parser_recovers_malformed_output(text, scores, regions):
    a = parse_judge_output(text)
    assert a.scores == scores and a.regions == regions


@pytest.mark.parametrize("text", ["", "   \n", None, "I cannot judge this image."])
def test_parser_on_empty_or_useless_output_reports_instead_of_raising(text):
    a = parse_judge_output(text)
    assert a.scores == {} and a.regions == [] and a.problems
    assert aggregate(a.scores) is None


def _edit_images(tmp_path):
    import random

    from training.dataset.edit.edits import sample_example
    from training.dataset.edit.scene import render

    ex = sample_example(random.Random(0), "wrong_object")
    return ex.instruction.text, render(ex.source), [render(ex.chosen), render(ex.rejected)]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_judge_runs_end_to_end_on_a_tiny_random_chat_model(tmp_path, family):
    from training.reward.edit.judge import JudgeSettings, write_judge_folder
    from training.reward.edit.scorer import load_edit_scorer

    if family == "qwen2_5_vl":
        from training.reward.models.tiny import save_tiny_qwen25vl

        base = save_tiny_qwen25vl(tmp_path / "base", min_pixels=56 * 56, max_pixels=56 * 56)
    else:
        from training.reward.edit.qwen3 import save_tiny_qwen3vl

        base = save_tiny_qwen3vl(tmp_path / "base")
    settings = JudgeSettings.from_dict({"max_new_tokens": 8, "template": {
        "system": "Custom judge.", "user": "Do {instruction}? {source} then {edited} JSON please"}})
    folder = write_judge_folder(tmp_path / "judge", base, settings)
    saved = json.loads((folder / "spatialreward.json").read_text())
    assert saved["kind"] == "judge" and saved["judge"]["template"]["system"] == "Custom judge."
    scorer = load_edit_scorer(folder, device="cpu")
    assert "Custom judge." in scorer.model.chat and "JSON please" in scorer.model.chat  # the config's wording
    instruction, source, edited = _edit_images(tmp_path)
    result = scorer.score(source, edited, instruction)
    rows = result.rows()
    assert result.mode == "judge" and len(rows) == 2
    for row in rows:  # a random model writes nonsense: parsed without raising, fallback reward, raw kept
        assert row["mean"] == 0.0 and row["std"] == 0.0 and isinstance(row["reasoning"], str)
        assert "missing score(s): instruction_success, over_editing" in row["judge"]["problems"]
    # a plain chat-model folder is a judge too, with the pack's template
    plain = load_edit_scorer(base, device="cpu")
    assert "instruction_success" in plain.model.chat


def test_make_judge_writes_a_folder_with_the_users_template(tmp_path, capsys):
    from training.reward.edit.config import EditScorerConfig
    from training.reward.edit.make_judge import main

    base = tmp_path / "model"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"template": {"system": "S", "user": "{source}{edited} do: {instruction}"},
                                    "quality_template": None, "aggregation": {"semantic_exponent": 1.0}}))
    assert main(["--base", str(base), "--out", str(tmp_path / "judge"), "--settings", str(settings)]) == 0
    cfg = EditScorerConfig.read(tmp_path / "judge")
    assert cfg.kind == "judge" and cfg.judge["template"]["user"] == "{source}{edited} do: {instruction}"
    assert cfg.judge["quality_template"] is None and cfg.judge["aggregation"]["semantic_exponent"] == 1.0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"template": {"system": "S", "user": "no placeholders"}}))
    assert main(["--base", str(base), "--out", str(tmp_path / "j2"), "--settings", str(bad)]) == 2
    assert "must contain {instruction} exactly once" in capsys.readouterr().err
    (base / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert main(["--base", str(base), "--out", str(tmp_path / "j3")]) == 2
    assert "got 'llama'" in capsys.readouterr().err
