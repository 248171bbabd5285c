"""`make demo`'s job (training.demo) at a small size: the shipped scorer, evaluated, trained on, ranking."""

import json

from PIL import Image

from training.demo import main


def test_demo_writes_a_report_with_the_shipped_scorer(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    out = tmp_path / "demo"
    assert main(["--out", str(out), "--pairs", "240", "--train-steps", "2", "--grpo-steps", "1",
                 "--grpo-prompts", "8"]) == 0
    report = (out / "report.md").read_text()
    assert "RANDOM" not in report and "Scorer: `shapes`" in report
    assert "| shapes | SpatialScore |" in report
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["pairs"] >= 20 and evaluation["pairwise_accuracy"] >= 0.8
    sheet = Image.open(out / "ranked_candidates.png")
    assert sheet.size == (8 * 160, 160 + 46)
    assert "## Continued training" in report and (out / "train" / "scorer" / "spatialscore.json").is_file()
    assert "2 more steps" in report
    assert "## The RL proof" in report and "| (c) all relations of the prompt | all |" in report
    assert (out / "grpo_before_after.png").is_file() and (out / "grpo_live" / "reward_curve.png").is_file()
