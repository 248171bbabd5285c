"""Pairs reading, accuracy reports, the pairwise judge, and `python -m training.reward evaluate` end to end."""

import json

import numpy as np
import pytest
import torch

from training.reward.__main__ import main
from training.reward.evaluate import EvalRow, accuracy_report, markdown_table, pair_credit
from training.reward.judges import PairwiseJudge, pairwise_margin
from training.reward.train.pairs import Pair, PairsFileError, read_pairs

from .reward_pairs import make_pairs, single_thread  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval-pairs")
    make_pairs(folder, n=12, splits=("train", "test"), val_every=2)
    return folder


def test_read_pairs_resolves_paths_and_fields(pairs_dir):
    pairs = read_pairs(pairs_dir / "pairs.jsonl")
    assert len(pairs) == 12 and pairs[0].chosen == pairs_dir / "0000_c.png" and pairs[0].line == 1
    assert pairs[2].perturbations == 2 and pairs[2].relations == ("left_of", "above")
    assert [p.split for p in read_pairs(pairs_dir / "pairs.jsonl", split="test")] == ["test"] * 6
    with pytest.raises(PairsFileError, match="no pairs in split 'val' \\(splits present: test, train\\)"):
        read_pairs(pairs_dir / "pairs.jsonl", split="val")


def test_malformed_lines_are_all_reported_with_line_numbers(pairs_dir, tmp_path):
    good = (pairs_dir / "pairs.jsonl").read_text().splitlines()[0]
    row = json.loads(good)
    abs_row = {**row, "chosen": str(pairs_dir / row["chosen"]), "rejected": str(pairs_dir / row["rejected"])}
    lines = [
        json.dumps(abs_row),  # 1: fine (absolute paths)
        "{not json",  # 2
        json.dumps({**abs_row, "prompt": ""}),  # 3
        "",  # 4: blank, ignored
        json.dumps({k: v for k, v in abs_row.items() if k != "rejected"}),  # 5
        json.dumps({**abs_row, "chosen": "missing.png"}),  # 6
        json.dumps({**abs_row, "perturbations": 0}),  # 7
        json.dumps([1, 2]),  # 8
        json.dumps({**abs_row, "rejected": abs_row["chosen"]}),  # 9
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(PairsFileError) as info:
        read_pairs(bad)
    message = str(info.value)
    assert str(bad) in message and "7 problem(s)" in message
    for expected in ("line 2: not valid JSON", "line 3: 'prompt' must be a non-empty string",
                     "line 5: missing 'rejected'", "line 6: 'chosen' image not found", "line 7: 'perturbations'",
                     "line 8: expected a JSON object", "line 9: 'chosen' and 'rejected' are the same image"):
        assert expected in message
    assert "line 1" not in message and "line 4" not in message
    with pytest.raises(PairsFileError, match="without manifest.jsonl"):
        read_pairs(tmp_path)
    with pytest.raises(PairsFileError, match="not found"):
        read_pairs(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(PairsFileError, match="no pairs"):
        read_pairs(tmp_path / "empty.jsonl")


def _pair(k, relations=()):
    return Pair("p", "c.png", "r.png", perturbations=k, relations=relations)


def test_accuracy_report_counts_ties_as_half_and_splits_by_count_and_relation():
    pairs = [_pair(1, ("left_of",)), _pair(1, ("above",)), _pair(2, ("left_of", "above")), _pair(3), _pair(None)]
    margins = [0.5, -0.1, 0.0, 2.0, 1.0]
    assert pair_credit(margins).tolist() == [1, 0, 0.5, 1, 1]
    report = accuracy_report(pairs, margins)
    assert report["pairwise_accuracy"] == pytest.approx(3.5 / 5) and report["pairs"] == 5
    assert report["by_perturbations"] == {"1": {"accuracy": 0.5, "pairs": 2}, "2-3": {"accuracy": 0.75, "pairs": 2}}
    assert report["by_relation"] == {"above": {"accuracy": 0.25, "pairs": 2}, "left_of": {"accuracy": 0.75, "pairs": 2}}
    empty = accuracy_report([_pair(1)], [1.0])
    assert empty["by_perturbations"]["2-3"] == {"accuracy": None, "pairs": 0}
    table = markdown_table([EvalRow("m", "SpatialScore", "m", report), EvalRow("b", "zero-shot (pointwise)", "b",
                                                                               empty)])
    lines = table.splitlines()
    assert lines[0] == "| Model | Type | Overall (%) | 1 perturbation (%) | 2-3 perturbations (%) |"
    assert lines[2] == "| m | SpatialScore | 70.00 | 50.00 | 75.00 |"
    assert lines[3] == "| b | zero-shot (pointwise) | 100.00 | 100.00 | n/a |"
    assert "| Model | above (%) | left_of (%) |" in table


def test_pairwise_margin_cancels_order_bias():
    # Always "Yes" whatever the order: a tie. Prefers chosen in both orders: positive. Follows position: tie.
    assert pairwise_margin(np.array([1.0]), np.array([1.0])).tolist() == [0.0]
    assert pairwise_margin(np.array([0.9]), np.array([0.2]))[0] == pytest.approx(0.35)
    assert pairwise_margin(np.array([0.3]), np.array([0.6]))[0] == pytest.approx(-0.15)


def test_pairwise_judge_sees_both_images_in_one_chat(tiny_base, pairs_dir):
    from training.reward import load_model
    from training.reward.train.pairs import load_pair_images

    model = load_model(tiny_base)
    judge = PairwiseJudge(model, batch_size=2)
    assert judge.rendered.count(model.processor.image_token) == 2
    pairs = read_pairs(pairs_dir / "pairs.jsonl")[:3]
    images = [load_pair_images(p) for p in pairs]
    chosen, rejected = [c for c, _ in images], [r for _, r in images]
    prompts = [p.prompt for p in pairs]
    forward = judge.prefer_first(chosen, rejected, prompts)
    backward = judge.prefer_first(rejected, chosen, prompts)
    assert not torch.allclose(forward, backward)  # the order of the images matters to the model
    tok = model.processor.tokenizer
    yes, no = tok.encode("Yes")[0], tok.encode("No")[0]
    text = judge.rendered.replace("\x00PAIRWISE_PROMPT\x00", prompts[0])
    batch = model.processor(text=[text], images=[chosen[0], rejected[0]], return_tensors="pt",
                            size={"shortest_edge": model.config.min_pixels, "longest_edge": model.config.max_pixels})
    with torch.no_grad():
        logp = model.vlm(**batch).logits[0, -1].float().log_softmax(-1)
    assert float(logp[yes] - logp[no]) == pytest.approx(float(forward[0]), abs=1e-4)
    scores = judge.pair_scores(pairs, chunk_pairs=2)
    expected = pairwise_margin(torch.sigmoid(forward.double()).numpy(), torch.sigmoid(backward.double()).numpy())
    np.testing.assert_allclose(scores.margin, expected, atol=1e-6)


def test_evaluate_cli_writes_json_and_table_with_both_baselines(tiny_base, pairs_dir, tmp_path, capsys):
    from training.reward.models.tiny import save_tiny_scorer

    scorer = save_tiny_scorer(tmp_path / "scorer", seed=2, weights="lora", base_dir=tiny_base)
    out = tmp_path / "eval.json"
    rc = main(["evaluate", "--model", str(scorer), "--data", str(pairs_dir / "pairs.jsonl"), "--json", str(out),
               "--batch-size", "4"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result = json.loads(out.read_text())
    assert result["split"] == "test" and result["pairs"] == 6
    assert set(result) >= {"pairwise_accuracy", "pairs", "by_perturbations", "by_relation", "rows"}
    assert set(result["by_perturbations"]) == {"1", "2-3"}
    assert sum(v["pairs"] for v in result["by_perturbations"].values()) == 6
    kinds = [r["kind"] for r in result["rows"]]
    assert kinds == ["SpatialScore", "zero-shot (pointwise)", "pairwise judge (both orders)"]
    assert "| Model | Type | Overall (%) | 1 perturbation (%) | 2-3 perturbations (%) |" in captured.out
    assert captured.out.count("| SpatialScore |") == 1 and "pairwise judge (both orders)" in captured.out
    for row in result["rows"]:
        assert 0 <= row["pairwise_accuracy"] <= 1


def test_evaluate_cli_rejects_a_malformed_file_before_loading(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "chosen": "a.png"}\n')
    rc = main(["evaluate", "--model", str(tmp_path / "no-such-model"), "--data", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and "line 1: missing 'rejected'" in err and "line 1: 'chosen' image not found" in err
