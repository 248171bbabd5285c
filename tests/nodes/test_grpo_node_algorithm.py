"""The GRPO node's `algorithm` input: one optional widget, default Flow-GRPO, passed to the run's config."""

from __future__ import annotations

from nodes.logic.grpo_node import WIDGETS, NodeSettings, build_config, check_settings
from nodes.logic.widgets import widget_values

VALUES = {"prompts": "a red circle left of a blue square", "steps": 2, "group_size": 4, "top_k": 1,
          "learning_rate": 1e-3, "lora_rank": 4, "lora_alpha": 4.0, "sampling_steps": 3, "noise_level": 0.7,
          "width": 64, "height": 64, "seed": 0, "kl_beta": 0.0, "lora_name": "x", "resume": False}


def test_algorithm_is_the_last_widget_optional_with_the_flow_grpo_default():
    widget = WIDGETS[-1]
    assert (widget.name, widget.default, widget.optional, widget.options) == ("algorithm", "flow_grpo", True,
                                                                                ("flow_grpo", "nft", "awm"))
    assert widget.schema_options()["optional"] is True and "DiffusionNFT" in widget.tooltip


def test_a_saved_workflow_without_it_trains_flow_grpo(tmp_path):
    settings = NodeSettings(**widget_values(WIDGETS, VALUES))
    assert settings.algorithm == "flow_grpo" and check_settings(settings) == []
    assert build_config(settings, tmp_path / "run").train.algorithm == "flow_grpo"


def test_the_choice_reaches_the_config_and_a_bad_one_is_refused(tmp_path):
    settings = NodeSettings(**widget_values(WIDGETS, {**VALUES, "algorithm": "nft"}))
    assert build_config(settings, tmp_path / "run").train.algorithm == "nft"
    bad = NodeSettings(**widget_values(WIDGETS, {**VALUES, "algorithm": "ppo"}))
    assert any(line.startswith("algorithm: 'ppo'") for line in check_settings(bad))
