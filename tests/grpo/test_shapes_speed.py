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


def test_table_gives_each_method_its_time_share_of_flow_grpo_and_the_clean_rate_at_the_gain():
    base = {"a": 0.3, "c": 0.30, "clean": 0.20, "clean_c": 0.15}

    def point(step, seconds, c, clean):
        return {"step": step, "seconds": seconds, "a": 0.5, "c": c, "clean": clean, "clean_c": 0.1}

    results = {
        "flow_grpo": {"seed0": [point(0, 0, 0.3, 0.2), point(30, 400.0, 0.5, 0.25)],
                      "seed1": [point(0, 0, 0.3, 0.2), point(30, 380.0, 0.45, 0.2), point(40, 500.0, 0.52, 0.2)]},
        "nft": {"seed0": [point(0, 0, 0.3, 0.2), point(5, 60.0, 0.55, 0.3)],
                "seed1": [point(0, 0, 0.3, 0.2), point(5, 70.0, 0.40, 0.1)]},
    }  # fmt: skip
    rows = {r["method"]: r for r in shapes_speed.summarise(results, base, {"flow_grpo": 10, "nft": 3})}
    assert rows["flow_grpo"]["time_to_gain_s"] == 450.0 and rows["flow_grpo"]["steps_to_gain"] == 35.0
    assert rows["flow_grpo"]["clean_at_gain"] == pytest.approx(0.225)
    assert rows["nft"]["time_to_gain_s"] is None and rows["nft"]["seed_times_s"] == [60.0, None]
    text = shapes_speed.table(list(rows.values()), base, "cmd")
    assert "| flow_grpo | 10 x 2 | 450 s (400, 500) | 1.00 | 35.0 | 22.5% |" in text
    assert "| nft | 3 x 2 | not reached (1/2 seeds: 60, -) | - |" in text


def test_a_bad_budget_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        shapes_speed.main(["--minutes", "1", "--minutes-for", "nft", "--out", str(tmp_path / "s")])
    assert exit_.value.code == 2
    assert "--minutes-for nft: expected METHOD=MINUTES" in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_run_of_every_method(tmp_path, monkeypatch):
    out = tmp_path / "study"
    toy = ["--set", "sample.group_size=4", "--set", "sample.batch_size=4", "--set", "prompts.per_step=1",
           "--set", "train.batch_size=4", "--train-prompts", "8", "--heldout", "8", "--eval-every", "1000"]
    # two runs at once, each a spawned process with one torch thread
    with one_torch_thread():
        assert shapes_speed.main(["--minutes", "0.2", "--minutes-for", "nft=0.1", "--seeds", "2", "--jobs", "2",
                                  "--out", str(out), *toy]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert list(results["results"]) == shapes_speed.DEFAULT_METHODS and results["heldout"] == 8
    for method, seeds in results["results"].items():
        assert set(seeds) == {"seed0", "seed1"}, method
        for points in seeds.values():
            # the base point, then the judged LoRAs (steps 2, 4, ... and the last), the last one reached once the
            # training phases used 12 s of CPU time
            steps = [p["step"] for p in points]
            assert steps[0] == 0 and steps == sorted(steps) and points[-1]["seconds"] >= (6.0 if method == "nft" else 12.0)
            assert set(steps[1:-1]) <= set(shapes_speed.EARLY_STEPS) and len(steps) >= 2
            assert all(0.0 <= p[k] <= 1.0 for p in points for k in ("a", "c", "clean", "clean_c"))
    table = (out / "table.md").read_text()
    assert all(f"| {m} | {0.1 if m == 'nft' else 0.2:g} x 2 |" in table for m in shapes_speed.DEFAULT_METHODS)
    assert "time to +20 pts of (c)" in table and results["minutes"]["nft"] == 0.1
    assert (out / "curve.png").stat().st_size > 0
    config = json.loads((out / "runs" / "nft" / "seed1" / "config.json").read_text())
    assert config["train"]["algorithm"] == "nft" and config["train"]["seed"] == 1
    assert json.loads((out / "runs" / "window2_cps" / "seed0" / "config.json").read_text())["sample"]["sde_type"] == "cps"
    fast = json.loads((out / "runs" / "shapes_fast" / "seed0" / "config.json").read_text())
    assert fast["train"]["algorithm"] == "nft" and fast["sample"]["deterministic"] is True

    # Again: finished runs and judged points are kept; a run killed before its end (no steps.json, its checkpoints
    # left) is trained again from the start
    seed1 = out / "runs" / "nft" / "seed1"
    (seed1 / "steps.json").unlink()
    (seed1 / "points.json").unlink()
    trained = []
    real_run = shapes_speed.run_method
    monkeypatch.setattr(shapes_speed, "run_method", lambda *a: trained.append(a[:2]) or real_run(*a))
    with one_torch_thread():
        assert shapes_speed.main(["--minutes", "0.2", "--minutes-for", "nft=0.1", "--seeds", "2", "--out", str(out),
                                  *toy]) == 0  # fmt: skip
    assert trained == [("nft", 1)]
    assert json.loads((seed1 / "steps.json").read_text())[-1]["seconds"] >= 6.0
