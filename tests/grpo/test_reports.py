"""metrics.jsonl survives a kill mid-line and is cut back to the resumed checkpoint; grids and curves are PNGs."""

from __future__ import annotations

import torch
from PIL import Image

from training.grpo.reports import MetricsLog, plot_reward_curve, save_sample_grid


def test_metrics_log_truncates_to_the_checkpoint_and_ignores_a_cut_line(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for step in range(4):
        log.append({"step": step, "reward_mean": 0.1 * step, "kl": float("nan")})
    with open(log.path, "a") as f:
        f.write('{"step": 4, "reward_me')  # a kill in the middle of a write
    assert [r["step"] for r in log.records()] == [0, 1, 2, 3]
    assert log.records()[0]["kl"] is None  # NaN is written as null: the file stays valid JSON
    log.truncate_after(2)
    assert [r["step"] for r in log.records()] == [0, 1, 2]
    log.append({"step": 3, "reward_mean": 1.0})
    assert [r["step"] for r in log.records()] == [0, 1, 2, 3]


def test_reward_curve_and_sample_grid_are_pngs(tmp_path):
    records = [{"step": 0, "eval_reward_mean": 0.1}] + [
        {"step": s, "reward_mean": 0.1 * s, "reward_std": 0.05, "kept_reward_mean": 0.1 * s} for s in range(1, 5)
    ]
    curve = plot_reward_curve(records, tmp_path / "curve.png")
    grid = save_sample_grid(torch.rand(3, 32, 32, 3), ["a", "b c", "d"], [0.5, -0.25, 1.0], tmp_path / "g" / "s.png",
                            title="step 1")  # fmt: skip
    for path, width in ((curve, 500), (grid, 3 * 256)):
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width >= width
