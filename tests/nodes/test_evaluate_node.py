"""The Evaluate node's logic without ComfyUI: settings and their one-line errors, the prompt sets, the LoRA checks, the
badge, and that its sampling gives every prompt the command line's noise whatever the batches."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from nodes.logic.evaluate_node import (
    CUSTOM,
    EvaluateSettings,
    badge,
    check_settings,
    lora_family_problem,
    lora_fit_problem,
    node_prompt_set,
    patched_model_problem,
    sample_same_noise,
)

GOOD = EvaluateSettings(prompt_set="shapes-heldout", custom_prompts="", num_prompts=8, images_per_prompt=1, seed=0,
                        steps=6, guidance=0.0, width=64, height=64, lora_name="shapes-grpo")  # fmt: skip


@pytest.mark.parametrize("change, message", [
    ({"prompt_set": "tiif"}, "prompt_set: 'tiif'"),
    ({"prompt_set": CUSTOM}, "custom_prompts: prompt_set is 'custom' but no prompt"),
    ({"num_prompts": -1}, "num_prompts: -1; expected 0 to"),
    ({"images_per_prompt": 100000}, "images_per_prompt: 100000; expected 1 to 64"),
    ({"width": 72}, "width: 72 is not a multiple of 16"),
    ({"steps": 0}, "steps: 0"),
    ({"guidance": float("nan")}, "guidance: nan"),
])  # fmt: skip
def test_impossible_settings_are_named(change, message):
    assert check_settings(GOOD) == []
    errors = check_settings(dataclasses.replace(GOOD, **change))
    assert any(message in e for e in errors), errors


def test_prompt_sets_first_n_or_all_and_custom_lines():
    what, items = node_prompt_set(GOOD)
    assert len(items) == 8 and "the first 8 of 400" in what
    _, every = node_prompt_set(dataclasses.replace(GOOD, prompt_set="geneval-position", num_prompts=0))
    assert len(every) == 100
    _, custom = node_prompt_set(dataclasses.replace(GOOD, prompt_set=CUSTOM, custom_prompts="a b\n\n  c   d \n"))
    assert [i.prompt for i in custom] == ["a b", "c d"]


def test_a_lora_in_another_key_format_is_sent_to_the_lora_loader(tmp_path):
    path = tmp_path / "sdxl.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320)}, str(path))
    assert "another model family" in lora_family_problem(path, "sdxl.safetensors")
    from training.grpo.shipped import LORAS

    assert set(LORAS) == {"shapes-grpo", "shapes-fast"}
    for name, shipped in LORAS.items():  # every shipped LoRA is one the node accepts
        assert lora_family_problem(shipped, name) == "", name


class FakePolicy:
    def __init__(self, shapes):
        self.shapes = shapes

    def named_trainable_parameters(self):
        return {name: torch.zeros(shape) for name, shape in self.shapes.items()}


def test_lora_fit_names_the_first_misfit():
    policy = FakePolicy({"transformer_blocks.0.attn.to_q.lora_A": (4, 64), "transformer_blocks.0.attn.to_q.lora_B": (64, 4)})
    fits = {"transformer.transformer_blocks.0.attn.to_q.lora_A.weight": torch.zeros(4, 64),
            "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": torch.zeros(64, 4)}  # fmt: skip
    assert lora_fit_problem(policy, fits, "x") == ""
    wider = {k: torch.zeros(4, 3072) if "lora_A" in k else v for k, v in fits.items()}
    assert "to_q.lora_A.weight is (4, 3072) in the LoRA, (4, 64) here" in lora_fit_problem(policy, wider, "x")
    deeper = {**fits, "transformer.transformer_blocks.18.attn.to_q.lora_A.weight": torch.zeros(4, 64)}
    assert "transformer_blocks.18.attn.to_q is not a module of this model" in lora_fit_problem(policy, deeper, "x")


class FakePatcher:
    def __init__(self, patches, family="flux"):
        self.patches, self.family = patches, family

    def is_clone(self, other):
        return self.family == other.family


def test_model_with_lora_must_be_the_base_with_patches_of_its_own():
    base = FakePatcher({})
    assert patched_model_problem(base, FakePatcher({"w": [1]})) == ""
    assert "carries no LoRA weights" in patched_model_problem(base, FakePatcher({}))
    assert "a different model" in patched_model_problem(base, FakePatcher({"w": [1]}, family="sdxl"))


def test_badge_is_the_first_lora_against_the_base():
    report = {"pairs": [{"a": "base", "b": "x", "scorer": {"win_rate": 0.7, "low": 0.6, "high": 0.8, "prompts": 50,
                                                              "mean_gain": 0.2},
                         "judge": {"available": False, "why": "..."}, "oracle_all_ok": {"a_rate": 0.3, "b_rate": 0.5}}]}
    assert badge(report) == {"label": "x vs base", "win_rate": 0.7, "low": 0.6, "high": 0.8, "prompts": 50,
                             "mean_gain": 0.2, "oracle": {"a": 0.3, "b": 0.5}}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_flux_dir(tmp_path_factory):
    from training.common.tiny_flux import save_tiny_flux_pipeline

    return save_tiny_flux_pipeline(tmp_path_factory.mktemp("tiny-flux") / "flux", seed=0)


def test_node_sampling_gives_each_prompt_the_command_lines_noise(tiny_flux_dir):
    from tests.grpo.conftest import make_policy, perturb_lora
    from training.grpo.sampling import generate

    policy = make_policy(Path(tiny_flux_dir))
    perturb_lora(policy, scale=0.3)
    prompts = ["a red circle left of a cup", "a dog", "a blue square above a green triangle"]
    settings = {"num_steps": 2, "guidance": 3.5, "height": 64, "width": 64}
    for with_lora in (False, True):
        cli = generate(policy, prompts, settings, 5, 3, with_lora)
        node = sample_same_noise(policy, prompts, settings, 5, 2, with_lora)
        torch.testing.assert_close(node, cli, atol=1e-5, rtol=0)
