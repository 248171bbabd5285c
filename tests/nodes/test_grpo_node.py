"""What the GRPO Train node says in the graph's terms (no ComfyUI needed): a run already under its lora_name, the
phase in progress with the progress bar's position, and what Cancel or the end of a run saved."""

from __future__ import annotations

import json

import torch

from nodes.logic.grpo_node import (
    BAR_PER_STEP,
    bar_value,
    cancelled_text,
    existing_run_problem,
    finished_text,
    phase_text,
    run_folder,
)
from training.grpo.checkpoint import save_checkpoint
from training.grpo.config import GRPOConfig
from training.grpo.reports import MetricsLog


def make_run(run_dir, checkpoint_steps, planned_steps=40, rewards=()):
    """A run folder as the trainer leaves it: config.json, metrics.jsonl and real checkpoints of a small LoRA."""
    config = GRPOConfig()
    config.train.steps = planned_steps
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict()))
    log = MetricsLog(run_dir / "metrics.jsonl")
    for step, reward in enumerate(rewards, start=1):
        log.append({"step": step, "reward_mean": reward})
    params = {"lora_A": torch.nn.Parameter(torch.zeros(2, 2))}
    optimizer = torch.optim.AdamW(params.values())
    for step in checkpoint_steps:
        save_checkpoint(run_dir, step, params, optimizer, config.to_dict(), {"lora_A": params["lora_A"].detach()})
    return run_dir


def test_a_run_under_the_lora_name_is_named_with_the_inputs_to_change(tmp_path):
    # interrupted during step 7: metrics has 7 records, the last checkpoint is step 6
    run_dir = make_run(run_folder(tmp_path / "output", "my_lora"), [5, 6], rewards=[-11.0, -10.5, -10.0, -9.9,
                                                                                     -9.5, -8.54, -7.0])  # fmt: skip
    problem = existing_run_problem(run_dir, "my_lora", resume=False)
    assert problem == ("lora_name 'my_lora' already has a run (6 of 40 steps done, last reward -8.5400; "
                       "output/spatialscore_grpo/my_lora): switch on resume to continue it, or change lora_name "
                       "to start a new one")  # fmt: skip
    assert "--resume" not in problem and "\n" not in problem
    assert existing_run_problem(run_dir, "my_lora", resume=True) == ""


def test_no_problem_without_a_checkpoint(tmp_path):
    assert existing_run_problem(run_folder(tmp_path, "fresh"), "fresh", resume=False) == ""
    # cancelled before the first checkpoint: the folder exists, nothing to continue
    run_dir = make_run(run_folder(tmp_path, "early"), [], rewards=[])
    assert existing_run_problem(run_dir, "early", resume=False) == ""


def test_a_run_without_metrics_or_config_still_says_its_steps(tmp_path):
    run_dir = make_run(run_folder(tmp_path, "bare"), [3])
    (run_dir / "config.json").unlink()
    assert "(3 steps done; output/spatialscore_grpo/bare)" in existing_run_problem(run_dir, "bare", resume=False)


def test_the_progress_bar_moves_through_each_phase_of_each_step():
    # the trainer's reports for steps 1 and 2 of a G=8 group (4 + 4 sampled, 8 scored, 2 + 2 kept trained)
    one_step = [("sampling", 0, 8), ("sampling", 4, 8), ("sampling", 8, 8), ("scoring", 0, 8), ("scoring", 8, 8),
                ("training", 0, 4), ("training", 2, 4), ("training", 4, 4)]  # fmt: skip
    values = [bar_value(step, *report) for step in (1, 2) for report in one_step]
    assert values == sorted(values)  # never backwards
    assert values[:8] == [0, 50, 100, 100, 200, 200, 250, 300]
    assert values[8] == BAR_PER_STEP and values[-1] == 2 * BAR_PER_STEP
    assert bar_value(0, "evaluation", 0, 4) == 0 and bar_value(3, "evaluation", 2, 4) == 3 * BAR_PER_STEP
    assert bar_value(1, "training", 0, 0) == BAR_PER_STEP  # an empty phase counts as done


def test_the_phase_is_named_with_its_step_and_counts():
    assert phase_text(3, 40, "sampling", 8, 24) == "step 3/40: sampling 8/24 images"
    assert phase_text(3, 40, "training", 2, 12) == "step 3/40: training 2/12 kept samples"
    assert phase_text(0, 40, "evaluation", 0, 4) == "before step 1: evaluation 0/4 eval prompts"


def test_what_cancel_and_the_end_of_a_run_saved():
    assert cancelled_text("my_lora", 6, 40) == (
        "Cancelled: saved models/loras/my_lora.safetensors, the LoRA of step 6 of 40 (checkpoint step_000006); "
        "switch on resume to continue from there")  # fmt: skip
    assert cancelled_text("my_lora", None, 40) == "Cancelled before the first step finished: no LoRA saved"
    assert finished_text("my_lora.safetensors", 40, -8.54) == (
        "Saved models/loras/my_lora.safetensors after 40 steps, last reward -8.5400")  # fmt: skip
