"""The side-by-side study command at toy size: every method, 2 seeds, a 0.2-minute budget on 8 training prompts."""

from __future__ import annotations

import json

import pytest

from training.grpo.recipes import shapes_speed

from ..threads import one_torch_thread


def test_time_to_gain_is_the_first_point_over_base_plus_20_points():
    points = [{"seconds": 0.0, "c": 0.10}, {"seconds": 5.0, "c": 0.25}, {"seconds": 9.0, "c": 0.31}]
    assert shapes_speed.time_to_gain(points, 0.05) == 5.0  # 0.25 is base + 20 points, to the float
    assert shapes_speed.time_to_gain(points, 0.10) == 9.0
    assert shapes_speed.time_to_gain(points, 0.12) is None


@pytest.mark.slow
def test_smoke_run_of_every_method(tmp_path):
    out = tmp_path / "study"
    toy = ["--set", "sample.group_size=4", "--set", "sample.batch_size=4", "--set", "prompts.per_step=1",
           "--set", "train.batch_size=4"]  # fmt: skip
    with one_torch_thread():
        assert shapes_speed.main(["--minutes", "0.2", "--seeds", "2", "--out", str(out), "--train-prompts", "8",
                                  "--heldout", "8", "--eval-every", "1000", *toy]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert set(results["results"]) == set(shapes_speed.METHODS) and results["heldout"] == 8
    for method, seeds in results["results"].items():
        assert set(seeds) == {"seed0", "seed1"}, method
        for points in seeds.values():
            # the base point, then the last step's LoRA, reached once the training phases used 12 s
            assert points[0]["step"] == 0 and points[-1]["step"] >= 1 and points[-1]["seconds"] >= 12.0
            assert all(0.0 <= p[k] <= 1.0 for p in points for k in ("a", "c", "clean", "clean_c"))
    table = (out / "table.md").read_text()
    assert all(f"| {m} | 2 |" in table for m in shapes_speed.METHODS) and "time to +20 pts of (c)" in table
    assert (out / "curve.png").stat().st_size > 0
    config = json.loads((out / "runs" / "nft" / "seed1" / "config.json").read_text())
    assert config["train"]["algorithm"] == "nft" and config["train"]["seed"] == 1
    assert json.loads((out / "runs" / "window2_cps" / "seed0" / "config.json").read_text())["sample"]["sde_type"] == "cps"
