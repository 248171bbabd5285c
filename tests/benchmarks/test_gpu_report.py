"""benchmarks.gpu_report: the command that measures every owed GPU figure is known to work before a GPU sees it.

One real run at --shape mini (the same code at toy size on the CPU, each item in its own process); the budget,
memory, diffusers, interruption and bad-input paths run in-process with the item runner and the device probe
stood in for, since what they decide depends only on the plan, the clock and the probe.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks.gpu_report.__main__ as gpu_report
from benchmarks.gpu_report import device, plan
from benchmarks.gpu_report.items import ITEMS, NAMES
from benchmarks.gpu_report.runner import Outcome

ROOT = Path(__file__).resolve().parents[2]
HEADER = "| item | measure | predicted | measured | measured / predicted |"
CPU = {"torch": "2.13.0+cpu", "cuda_runtime": None, "cuda": False, "name": "CPU (test)", "total_gib": None,
       "free_gib": 20.0, "driver": None, "transformers": "5", "peft": "0", "accelerate": "1", "diffusers": "0.42.1"}


def _report(folder: Path) -> dict:
    return json.loads((folder / "gpu_report.json").read_text(encoding="utf-8"))


def _item(report: dict, name: str) -> dict:
    return next(e for e in report["items"] if e["name"] == name)


@pytest.mark.slow
def test_mini_run_writes_every_item_beside_its_prediction(tmp_path):
    out = tmp_path / "report"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-m", "benchmarks.gpu_report", "--shape", "mini", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert summary.startswith("gpu_report (mini") and "4 of 4 items measured" in summary, run.stdout

    report = _report(out)
    assert report["finished"] and report["shape"] == "mini" and [e["name"] for e in report["items"]] == NAMES
    for name in NAMES:
        entry = _item(report, name)
        assert entry["status"] == "done", entry
        assert (out / "items" / f"{name}.log").is_file()
        timed = [r for r in entry["rows"] if r["unit"] == "s"]
        # every timed figure measured, predicted from a saved dry run, and their ratio taken
        assert timed and all(r["measured"] > 0 and r["predicted"] > 0 and r["ratio"] > 0 for r in timed), timed
    assert all("predicted" in r and r["predicted_source"] for e in report["items"] for r in e["rows"])

    table = (out / "gpu_report.md").read_text(encoding="utf-8")
    assert HEADER in table and "CPU" in table and "torch" in table
    for name in NAMES:
        assert f"| {name} |" in table and f"**{name}**" in table


def _stub_runs(monkeypatch, calls: list[str], interrupt_at: str | None = None):
    """Items "run" at once and report one figure (or raise as a SIGTERM would, for `interrupt_at`)."""
    def run_item(name, shape, folder, timeout_s):
        calls.append(name)
        if name == interrupt_at:
            raise KeyboardInterrupt
        key = next(i for i in ITEMS if i.name == name).measures()[0].key
        return Outcome("done", "", 0.1, {"measured": {key: 0.5}, "info": {}, "parts_failed": {}})

    monkeypatch.setattr(gpu_report, "run_item", run_item)


def _cpu_probe(monkeypatch, **changes):
    monkeypatch.setattr(device, "probe", lambda hide_cuda: dict(CPU, **changes))


def test_a_budget_too_small_skips_with_the_reason_and_keeps_what_was_done(monkeypatch, tmp_path, capsys):
    _cpu_probe(monkeypatch)
    calls = []
    _stub_runs(monkeypatch, calls)
    # the first item's plan fits, the next ones' do not
    monkeypatch.setitem(plan.MINI_S, "score-7b", 5.0)
    budget = plan.MINI_S["score-7b"] + 1
    later = NAMES[1:]
    assert budget < min(plan.MINI_S[name] for name in later)
    assert gpu_report.main(["--shape", "mini", "--out", str(tmp_path), "--budget-s", str(budget)]) == 0
    assert calls == ["score-7b"]
    report = _report(tmp_path)
    done = _item(report, "score-7b")
    assert done["status"] == "done" and done["rows"][0]["measured"] == 0.5 and done["rows"][0]["ratio"]
    for name in later:
        skipped = _item(report, name)
        assert skipped["status"] == "skipped" and "of the budget left" in skipped["reason"], skipped
    out = capsys.readouterr().out
    assert "grpo-flux-dev: skipped: needs about" in out and f"skipped: {', '.join(later)}" in out
    assert "| score-7b | s an image, batch 1 |" in (tmp_path / "gpu_report.md").read_text(encoding="utf-8")


def test_an_item_that_cannot_fit_in_free_memory_is_skipped(monkeypatch, tmp_path):
    _cpu_probe(monkeypatch)
    monkeypatch.setattr(device, "free_gib", lambda info: 0.5)  # below a mini item's 1.5 GiB
    calls = []
    _stub_runs(monkeypatch, calls)
    assert gpu_report.main(["--shape", "mini", "--out", str(tmp_path), "--only", "score-7b"]) == 0
    assert calls == []
    entry = _item(_report(tmp_path), "score-7b")
    assert entry["status"] == "skipped" and "GiB free" in entry["reason"]
    assert _item(_report(tmp_path), "reward-train-7b")["status"] == "not selected"


def test_without_diffusers_the_diffusers_items_are_skipped_with_how_to_bring_it(monkeypatch, tmp_path, capsys):
    _cpu_probe(monkeypatch, diffusers=None, diffusers_error="ModuleNotFoundError: No module named 'diffusers'")
    calls = []
    _stub_runs(monkeypatch, calls)
    assert gpu_report.main(["--shape", "mini", "--out", str(tmp_path)]) == 0
    assert calls == ["score-7b", "reward-train-7b"]
    for name in ("grpo-flux-dev", "grpo-qwen-image"):  # both pipelines are diffusers'
        reason = _item(_report(tmp_path), name)["reason"]
        assert "diffusers is not importable" in reason and "pip install --no-deps" in reason and ".whl" in reason
    assert "Until then grpo-flux-dev and grpo-qwen-image are skipped" in capsys.readouterr().out  # preflight


def test_a_kill_keeps_what_was_measured(monkeypatch, tmp_path):
    _cpu_probe(monkeypatch)
    calls = []
    _stub_runs(monkeypatch, calls, interrupt_at="grpo-flux-dev")
    assert gpu_report.main(["--shape", "mini", "--out", str(tmp_path)]) == 130
    report = _report(tmp_path)
    assert not report["finished"] and report["summary"].startswith("interrupted")
    assert _item(report, "score-7b")["status"] == "done"
    assert _item(report, "grpo-flux-dev")["status"] == "interrupted"
    assert _item(report, "reward-train-7b")["status"] == "pending"
    # and the folder is the report's own: running again into it is allowed
    _stub_runs(monkeypatch, calls)
    assert gpu_report.main(["--shape", "mini", "--out", str(tmp_path)]) == 0


@pytest.mark.parametrize("args, message", [
    (["--only", "score-7b", "nope"], "--only: unknown item 'nope'; the items are score-7b"),
    (["--budget-s", "0"], "--budget-s: a number of seconds above 0"),
    (["--budget-s", "-5"], "--budget-s: a number of seconds above 0"),
    (["--budget-s", "nan"], "--budget-s: a number of seconds above 0"),
    (["--budget-s", "ten"], "invalid float value"),
    (["--shape", "huge"], "invalid choice"),
], ids=["unknown-only", "zero-budget", "negative-budget", "nan-budget", "text-budget", "bad-shape"])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_report.main(["--out", str(tmp_path / "new"), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_folder_not_ours_is_refused_untouched(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        gpu_report.main(["--shape", "mini", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "not empty" in err and "notes.txt" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    with pytest.raises(SystemExit) as exc:
        gpu_report.main(["--shape", "mini"])  # no --out at all
    assert exc.value.code == 2 and "--out: required" in capsys.readouterr().err


def test_the_plan_fits_eight_minutes_on_an_h100_and_reads_the_presets_dry_run():
    costs = {item.name: plan.cost(item, "full") for item in ITEMS}
    assert all(costs.values()), costs  # every item has something to run
    total = plan.PROBE_S + sum(c.seconds for c in costs.values() if c)
    assert total < 8 * 60, costs
    # each item's compute is in its plan, on top of the start-up and the builds
    assert all(c.seconds > plan.STARTUP_S + plan.BUILD_7B_S for c in costs.values() if c)
    from benchmarks.gpu_report import predictions

    flux = predictions.grpo_flux()
    assert f"grpo_tb{predictions.grpo_preset()['train_batch']}.json" in flux["s_group"].source
    assert flux["s_group"].value == pytest.approx(16.3, abs=0.1)  # BENCHMARKS.md's "16.3 s a group"
    assert flux["peak_gib"].value == pytest.approx(59.0, abs=0.05)  # docs/memory_plan.md, train batch 2
    assert costs["grpo-flux-dev"].gib == pytest.approx(60.0, abs=0.05)  # the free-memory check: + CUDA context
    qwen = predictions.grpo_qwen_image()
    assert "grpo_qwen_image.json" in qwen["s_group"].source
    assert qwen["s_group"].value == pytest.approx(29.8, abs=0.1)  # the Qwen-Image dry run's 29.8 s a group
    assert qwen["peak_gib"].value == pytest.approx(59.3, abs=0.05)  # text encoder and scorer offloaded


def test_an_item_over_its_time_is_killed_and_one_that_crashes_is_named(tmp_path):
    from benchmarks.gpu_report.runner import run_item

    slow = run_item("score-7b", "mini", tmp_path, timeout_s=1.0)  # importing torch alone takes longer
    assert slow.status == "timed out" and "killed after 1 s" in slow.reason and slow.wall_s < 30
    crashed = run_item("score-7b", "no-such-shape", tmp_path, timeout_s=60.0)
    assert crashed.status == "failed" and crashed.reason.startswith("exit 2: ") and "invalid choice" in crashed.reason
    assert (tmp_path / "items" / "score-7b.log").is_file()
