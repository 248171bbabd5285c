"""The dry run's fake-tensor numbers held to reality: the same path at tiny size on real and on fake tensors.

Parameter and gradient bytes must match exactly (they are sizes); the activation peak within 10% (fake tensors
cannot share storage the way some real kernels' outputs do). Full-size dry runs are not tests (minutes each).
"""

from __future__ import annotations

import json

import pytest
import torch

from tests.threads import one_torch_thread

KINDS = ("Parameter", "Gradient", "Optstate")


def _compare(real, fake):
    assert len(real.phases) == len(fake.phases)
    for r, f in zip(real.phases, fake.phases, strict=True):
        for kind in KINDS:
            assert r.by_kind[kind] == f.by_kind[kind], (r.name, kind, r.by_kind, f.by_kind)
        act_r, act_f = r.by_kind["Activation"] + r.by_kind["Temp"], f.by_kind["Activation"] + f.by_kind["Temp"]
        assert act_r > 0
        assert abs(act_f - act_r) <= 0.10 * act_r, (r.name, act_r, act_f)
        assert r.flops == f.flops > 0, (r.name, r.flops, f.flops)


def test_score_real_and_fake_agree():
    from benchmarks.dryrun import score

    with one_torch_thread():
        real = score.run("tiny", fake=False, batch=3, px=112)
        fake = score.run("tiny", fake=True, batch=3, px=112)
    _compare(real, fake)
    assert fake.phases[0].by_kind["Gradient"] == 0  # scoring keeps no gradients
    assert tuple(real.result.mean.shape) == tuple(fake.result.mean.shape) == (3,)


def test_reward_train_step_real_and_fake_agree():
    from benchmarks.dryrun import reward_train

    with one_torch_thread():
        real = reward_train.run("tiny", fake=False, micro_batch=2, px=112, autocast=False)
        fake = reward_train.run("tiny", fake=True, micro_batch=2, px=112, autocast=False)
    _compare(real, fake)
    phase = fake.phases[0]
    # the steady state: AdamW's two fp32 moments of every trainable weight exist during the step
    assert phase.by_kind["Gradient"] > 0 and phase.by_kind["Optstate"] >= 2 * fake.trainable_bytes


def test_grpo_step_real_and_fake_agree():
    from benchmarks.dryrun import grpo

    overrides = {"sample.group_size": 8, "sample.batch_size": 4, "sample.num_steps": 2, "train.top_k": 2,
                 "train.batch_size": 2, "reward.batch_size": 4, "lora.rank": 4, "lora.alpha": 4.0,
                 "model.max_sequence_length": 32, "prompts.per_step": 1, "train.timestep_fraction": 1.0}
    with one_torch_thread():
        real, weights_r = grpo.run("tiny", "tiny", fake=False, config=grpo.load_grpo_config(None, overrides), px=64)
        fake, weights_f = grpo.run("tiny", "tiny", fake=True, config=grpo.load_grpo_config(None, overrides), px=64)
    assert weights_r == weights_f
    assert [p.name for p in fake.phases] == ["encode", "sampling", "decode", "reward", "training"]
    _compare(real, fake)
    training = fake.phases[-1]
    assert training.by_kind["Gradient"] > 0 and training.repeat == 2 * 2  # 4 kept / batch 2, x 2 trained steps


def test_one_row_override_saves_the_embedding_copy():
    """peft's trainable-token forward copies the embedding matrix; the override does not (measured on the
    embedding layer's forward and backward, where the copy lives)."""
    from benchmarks.dryrun import reward_train
    from benchmarks.dryrun.measure import Meter

    ids = torch.tensor([[3, 5, 9, 12]])  # few tokens: the override allocates per token, peft per vocabulary row
    peaks = {}
    for row in ("one-row", "peft"):
        model = reward_train.build_trainable("tiny", fake=True, px=56, token_row=row)
        embed = model.vlm.get_input_embeddings()
        meter = Meter()
        with meter.phase("embed", {}):
            embed(ids).float().sum().backward()
        peaks[row] = meter.phases[0].peak
        weight = embed.token_adapter.base_layer.weight
    # one copy of the matrix saved, less the override's own per-token tensors (a few 512-byte blocks)
    assert peaks["peft"] - peaks["one-row"] >= 0.95 * weight.numel() * weight.element_size()


def test_cli_writes_the_issue_json(tmp_path, capsys):
    from benchmarks.dryrun.__main__ import main

    out = tmp_path / "score.json"
    with one_torch_thread():
        assert main(["score", "--shape", "tiny", "--px", "64", "--batch", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    phase = data["phases"][0]
    assert set(phase) >= {"name", "peak_gib", "by_kind", "tflop", "predicted_s"}
    assert set(data["fits"]) == {"24", "48", "80"} and all(data["fits"].values())
    assert "score" in capsys.readouterr().out


def test_grpo_window_trains_fewer_steps_and_gain_is_steps_times_step_seconds(tmp_path, capsys):
    """--sde-window 0 2 trains 2 of the tiny preset's steps instead of its fraction's; --steps-to-gain multiplies."""
    from benchmarks.dryrun.__main__ import main

    runs = {}
    for name, extra in (("all", []), ("window", ["--sde-window", "0", "2"])):
        out = tmp_path / f"{name}.json"
        with one_torch_thread():
            assert main(["grpo", "--shape", "tiny", "--px", "64", "--steps-to-gain", "12.5", "--json", str(out),
                         *extra]) == 0
        runs[name] = json.loads(out.read_text())
    printed = capsys.readouterr().out
    train = {k: next(p for p in v["phases"] if p["name"] == "training") for k, v in runs.items()}
    assert train["window"]["tflop"] < train["all"]["tflop"]
    assert runs["window"]["sde_window"] == [0, 2] and runs["all"]["sde_window"] is None
    for run in runs.values():
        assert run["predicted_s_to_gain"] == pytest.approx(12.5 * run["predicted_step_s"], abs=0.1)
    assert "SDE window 0-1 (ODE elsewhere)" in printed and "to the gain: 12.5 steps x" in printed


@pytest.mark.parametrize("argv, message", [
    (["score", "--shape", "13b"], "--shape"),
    (["grpo", "--shape", "flux-dev", "--real"], "--real"),
    (["score", "--px", "500"], "--px"),
    (["score", "--px", "32"], "--px"),
    (["reward-train", "--micro-batch", "0"], "--micro-batch"),
    (["grpo", "--text-tokens", "600"], "--text-tokens"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    from benchmarks.dryrun.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["grpo", "--scorer", "70b"], "--scorer: one of 7b, 3b, tiny, got '70b'"),
    (["grpo", "--px", "65536"], "--px: at most 2048"),
    (["score", "--px", "65536"], "--px: at most 2048"),
    (["score", "--batch", "1000000000"], "--batch: 1..1024, got 1000000000"),
    (["score", "--batch", "1e9"], "argument --batch: invalid int value: '1e9'"),
    (["score", "--batch", "256", "--px", "1024"], "256 images of 1024x1024 are drawn for real; at most 67108864"),
    (["reward-train", "--micro-batch", "200"], "400 images of 512x512 are drawn for real"),
    (["grpo", "--train-batch", "1000000000"], "--train-batch: 1..1024"),
    (["grpo", "--steps-to-gain", "0"], "--steps-to-gain: a positive number of steps, got 0.0"),
    (["grpo", "--sde-window", "2", "2"], "--sde-window: START < END, both steps from 0, got 2 2"),
])
def test_out_of_range_arguments_are_one_line_before_anything_is_built(argv, message, capsys, monkeypatch):
    from benchmarks.dryrun import __main__ as dryrun

    monkeypatch.setattr(dryrun, "run", lambda args: pytest.fail("the dry run started"))
    with pytest.raises(SystemExit) as exit_:
        dryrun.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("kind", ["folder", "fifo", "symlink"])
def test_json_that_is_not_a_regular_file_is_refused_before_the_run(tmp_path, capsys, monkeypatch, kind):
    import os

    from benchmarks.dryrun import __main__ as dryrun

    path = tmp_path / "numbers.json"
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        (tmp_path / "mine.json").write_text("mine\n")
        path.symlink_to(tmp_path / "mine.json")
    before = sorted((p.name, os.lstat(p).st_mode) for p in tmp_path.iterdir())
    monkeypatch.setattr(dryrun, "run", lambda args: pytest.fail("the dry run started"))
    with pytest.raises(SystemExit) as exit_:
        dryrun.main(["score", "--shape", "tiny", "--json", str(path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and f"--json {path} is a" in err[0], err
    assert sorted((p.name, os.lstat(p).st_mode) for p in tmp_path.iterdir()) == before  # no numbers.json.tmp


def test_fake_parameters_take_no_memory():
    from benchmarks.dryrun.fake import build_qwen, is_fake

    vlm, _ = build_qwen("7b", fake=True, px=112)
    weights = list(vlm.parameters())
    assert all(is_fake(p) for p in weights)
    assert sum(p.numel() for p in weights) > 8e9 and weights[0].dtype == torch.bfloat16


def test_verdicts_name_every_phase_over_each_cards_limit():
    from benchmarks.dryrun.measure import GIB, Phase
    from benchmarks.dryrun.report import verdicts

    phases = [Phase("encode", {"Parameter": 30 * GIB}, 0.0), Phase("training", {"Parameter": 20 * GIB,
                                                                                   "Activation": 30 * GIB}, 0.0)]
    v = verdicts(phases)
    assert v["24"].startswith("does not fit") and "encode 30.0" in v["24"] and "training 50.0" in v["24"]
    assert "training 50.0" in v["48"] and "encode" not in v["48"] and "44.6 GiB limit" in v["48"]
    assert v["80"] == "fits"


def test_plan_names_the_smallest_measured_change_that_fits():
    from benchmarks.dryrun.plan import GRPO_VARIANTS, grpo_remedy, reward_table

    def grpo_row(training_gib, encode_gib=40.0):
        residency = {}
        for name in GRPO_VARIANTS:
            extra = (9.0 if "encoders resident" in name else 0) + (15.0 if "scorer resident" in name else 0)
            residency[name] = {"phases": [{"name": "encode", "peak_gib": encode_gib},
                                          {"name": "training", "peak_gib": training_gib + extra}]}
        return {"residency": residency, "weights_gib": {"transformer": 22.7}}

    preset = "text encoders offloaded, scorer resident"
    rows = {2: (grpo_row(32.0), True), 4: (grpo_row(35.0), True)}  # batch 2 with the scorer: 47 GiB, over 44.6
    assert grpo_remedy(rows, 4, preset, "48") == "offload the scorer (reward.keep_loaded = false)"
    rows = {2: (grpo_row(25.0), True), 4: (grpo_row(35.0), True)}  # both single changes fit: both are named
    assert grpo_remedy(rows, 4, preset, "48") == "offload the scorer (reward.keep_loaded = false) or train batch 2"
    rows = {2: (grpo_row(30.0), True), 4: (grpo_row(48.0), True)}  # only the two together fit (30 + 0)
    assert grpo_remedy(rows, 4, preset, "48") == "offload the scorer (reward.keep_loaded = false); train batch 2"
    assert grpo_remedy(rows, 4, "text encoders offloaded, scorer offloaded", "24") == \
        "nothing measured fits (the transformer with its LoRA alone is 22.7 GiB)"
    rows = {2: (grpo_row(25.0), True), 4: (grpo_row(45.0), True)}
    assert grpo_remedy(rows, 4, "text encoders offloaded, scorer offloaded", "48") == "train batch 2"

    def reward_row(peak):
        return {"phases": [{"name": "train step", "peak_gib": peak}], "predicted_step_s": 1.0}

    table = reward_table({1: (reward_row(19.8), True), 2: (reward_row(23.1), True), 4: (reward_row(29.8), True)})
    assert "**no**, 29.8 GiB (train step): micro-batch 1 with accumulation 4" in table[-1]
    assert table[-1].count("fits, 29.8 GiB") == 2


def test_memory_plan_holds_the_tables_of_the_committed_dry_runs(capsys):
    """docs/memory_plan.md's tables are what `python -m benchmarks.dryrun.plan` makes of the committed JSON files
    of the full-size runs: every cell measured, none interpolated."""
    from pathlib import Path

    from benchmarks.dryrun.plan import main

    root = Path(__file__).resolve().parents[2]
    assert main([str(root / "benchmarks" / "dryrun" / "results")]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 3 + 3 + 3 + 3 * 4  # headers + 3 score, 3 reward, 12 GRPO cells
    assert not any("interp." in row for row in rows)
    page = (root / "docs" / "memory_plan.md").read_text(encoding="utf-8")
    missing = [row for row in rows if row not in page]
    assert not missing, missing
