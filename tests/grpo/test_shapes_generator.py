"""The shapes generator: a real FluxPipeline folder, the project's sampling equals the pipeline's, held-out prompts
are never trained on, and the oracle figures measure what they claim."""

from __future__ import annotations

import json

import pytest
import torch

from tests.threads import one_torch_thread


@pytest.fixture(scope="module")
def random_generator_dir(tmp_path_factory):
    """A freshly initialised shapes generator (the shipped architecture, random weights), saved and reloadable."""
    from training.grpo.shapes_generator import (
        SAMPLING_FILE,
        GeneratorShape,
        Sampling,
        build_pipeline,
        sampling_record,
    )

    folder = tmp_path_factory.mktemp("shapes-gen") / "generator"
    build_pipeline(GeneratorShape(), seed=3).save_pretrained(folder, safe_serialization=True)
    (folder / SAMPLING_FILE).write_text(json.dumps(sampling_record(Sampling(), GeneratorShape())))
    return folder


def _pipeline_images(folder, prompts, noise, settings, lora=None):
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(str(folder), torch_dtype=torch.float32, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    if lora is not None:
        pipe.load_lora_weights(str(lora))
    b, c, h, w = noise.shape
    packed = noise.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)
    out = pipe(prompt=prompts, latents=packed, num_inference_steps=settings["num_steps"],
               guidance_scale=settings["guidance"], height=settings["height"], width=settings["width"],
               max_sequence_length=settings["max_sequence_length"], output_type="pt").images
    return out.permute(0, 2, 3, 1)


def _compare_with_pipeline(folder, lora=None):
    import argparse

    from training.grpo.sampling import generate, load_policy, sample_generators, settings_for

    settings = settings_for(folder, argparse.Namespace(num_steps=None, guidance=None, height=None, width=None))
    prompts = ["a red circle to the left of a blue square",
               "a green triangle above a yellow square, and a red circle to the right of the green triangle"]
    policy = load_policy(folder, lora, "cpu", settings["max_sequence_length"])
    ours = generate(policy, prompts, settings, seed=5, batch_size=8, lora=lora is not None)
    noise = policy.initial_noise(sample_generators(5, 0, range(len(prompts)), stream="eval"), settings["height"],
                                 settings["width"])
    theirs = _pipeline_images(folder, prompts, noise, settings, lora)
    assert ours.shape == theirs.shape == (2, settings["height"], settings["width"], 3)
    return (ours - theirs).abs().max().item()


def test_project_sampling_at_noise_0_equals_the_pipeline(random_generator_dir):
    with one_torch_thread():
        assert _compare_with_pipeline(random_generator_dir) < 1e-4


def test_declared_sampling_settings_are_the_defaults(random_generator_dir):
    import argparse

    from training.grpo.sampling import settings_for

    settings = settings_for(random_generator_dir, argparse.Namespace(num_steps=3, guidance=None, height=None,
                                                                     width=None))
    assert settings == {"num_steps": 3, "guidance": 0.0, "height": 64, "width": 64, "max_sequence_length": 40}


def test_heldout_prompts_are_never_training_prompts():
    from pathlib import Path

    from training.dataset.prompts import plain_prompt
    from training.grpo.prompts import load_prompts
    from training.grpo.recipes.shapes_data import PRETRAIN_SEED, heldout_prompts, n_objects, training_scenes

    heldout = heldout_prompts()
    assert len(heldout) == len(set(heldout)) == 400
    assert [n_objects(p) for p in heldout[:6]] == [2, 3, 2, 3, 2, 3]  # interleaved: any prefix is balanced
    configs = Path(__file__).resolve().parents[2] / "training" / "grpo" / "configs"
    assert load_prompts(configs / "shapes_heldout.txt") == heldout  # the shipped file is the recipe's list
    grpo = set(load_prompts(configs / "shapes_prompts.txt"))
    assert len(grpo) == 2000 and not grpo & set(heldout)
    pretrain = {plain_prompt(s) for s in training_scenes(3000, PRETRAIN_SEED, heldout)}
    assert not pretrain & set(heldout)


def test_oracle_figures_on_true_and_wrong_layouts():
    import random

    from PIL import Image

    from training.dataset.prompts import plain_prompt
    from training.dataset.scene import sample_scene
    from training.dataset.shapes_render import render_shapes
    from training.grpo.oracle_judge import OracleReward, oracle_figures, oracle_verdicts

    rng = random.Random(4)
    scenes = [sample_scene("shapes", rng) for _ in range(12)]
    prompts = [plain_prompt(s) for s in scenes]
    true_images = [render_shapes(s) for s in scenes]
    figures = oracle_figures(oracle_verdicts(true_images, prompts))
    assert figures["oracle_all_ok"] == figures["oracle_objects_ok"] == figures["oracle_relation_ok"] == 1.0
    assert figures["oracle_prompts_2obj"] + figures["oracle_prompts_3obj"] == 12
    # the same pictures, each under the next scene's prompt: objects go missing and relations fail
    shifted = oracle_figures(oracle_verdicts(true_images, prompts[1:] + prompts[:1]))
    assert shifted["oracle_all_ok"] < 0.5 and shifted["oracle_objects_ok"] < 1.0
    # a rendered scene is clean; a second copy of a named object, or an object in a colour the prompt does not name,
    # is clutter that (a)-(c) do not see (each colour's largest blob) and the clean figure does
    from training.reward.recipes.shapes_objects import object_fault

    assert figures["oracle_clean"] == figures["oracle_clean_all_ok"] == 1.0
    for kind in ("duplicate", "recolour"):
        faulty = [object_fault(s, kind, random.Random(i)) for i, s in enumerate(scenes)]
        kept = [(render_shapes(f), p) for f, p in zip(faulty, prompts, strict=True) if f is not None]
        verdicts = oracle_verdicts([k[0] for k in kept], [k[1] for k in kept])
        clean = sum(v["clean"] for v in verdicts)  # a copy that lands on its original merges with it: one object
        assert len(kept) >= 8 and clean <= (len(kept) // 4 if kind == "duplicate" else 0), (kind, clean, len(kept))
        if kind == "duplicate":  # the copy is not the largest blob every time: (a) still passes where it is not
            assert any(v["objects_ok"] for v in verdicts)
    rewards = OracleReward().score(true_images, prompts)
    assert torch.equal(rewards.mean, torch.full((12,), 2.5)) and rewards.std.abs().sum() == 0
    # a blank picture: nothing drawn, nothing holds
    blank = OracleReward().score([Image.new("RGB", true_images[0].size, "white")] * 2, prompts[:2])
    assert torch.equal(blank.mean, torch.zeros(2))
    # the clean variant counts relations in clean pictures only: the true layouts keep their reward, while objects
    # of other colours added (the relations still hold among the named ones) lose it
    assert torch.equal(OracleReward(clean=True).score(true_images, prompts).mean, torch.full((12,), 2.5))
    extra = [(render_shapes(f), p) for i, (s, p) in enumerate(zip(scenes, prompts, strict=True))
             if (f := object_fault(s, "extra", random.Random(i))) is not None]
    plain = OracleReward().score([e[0] for e in extra], [e[1] for e in extra]).mean
    strict = OracleReward(clean=True).score([e[0] for e in extra], [e[1] for e in extra]).mean
    assert len(extra) >= 8 and torch.equal(plain, torch.full((len(extra),), 2.5))
    assert torch.equal(strict, torch.full((len(extra),), 0.5))


def test_sample_cli_writes_samples_and_refuses_bad_input(random_generator_dir, tmp_path):
    with one_torch_thread():
        _sample_cli_cases(random_generator_dir, tmp_path)


def _sample_cli_cases(random_generator_dir, tmp_path):
    from training.grpo.cli.sample import main

    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle to the left of a blue square\n\na blue square above a green circle\n")
    out = tmp_path / "out"
    assert main(["--model", str(random_generator_dir), "--prompts", str(prompts), "--out", str(out),
                 "--seed", "7"]) == 0
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["a red circle to the left of a blue square",
                                           "a blue square above a green circle"]
    assert all((out / r["image"]).is_file() and r["seed"] == 7 for r in rows)
    # the same seed gives the same picture whatever the batch (seeded by the prompt's line)
    again = tmp_path / "again"
    assert main(["--model", str(random_generator_dir), "--prompts", str(prompts), "--out", str(again),
                 "--seed", "7", "--batch-size", "1"]) == 0
    import numpy as np
    from PIL import Image

    pixels = [np.asarray(Image.open(folder / rows[1]["image"]), dtype=np.int16) for folder in (out, again)]
    assert np.abs(pixels[0] - pixels[1]).max() <= 1  # float rounding of another batch shape, nothing more

    bad = {"missing model": ["--model", str(tmp_path / "nope"), "--prompts", str(prompts)],
           "missing prompts": ["--model", str(random_generator_dir), "--prompts", str(tmp_path / "none.txt")],
           "missing lora": ["--model", str(random_generator_dir), "--prompts", str(prompts), "--lora",
                            str(tmp_path / "x.safetensors")]}
    for case, args in bad.items():
        target = tmp_path / case.replace(" ", "_")
        assert main([*args, "--out", str(target)]) == 2, case
        assert not target.exists(), case
    assert main(["--model", str(random_generator_dir), "--prompts", str(prompts), "--out", str(out)]) == 2


def test_sample_cli_rejects_bad_numbers(random_generator_dir, tmp_path):
    from training.grpo.cli.sample import main

    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle to the left of a blue square\n")
    for flag, value in (("--num-steps", "0"), ("--guidance", "nan"), ("--height", "-64")):
        with pytest.raises(SystemExit) as exc:
            main(["--model", str(random_generator_dir), "--prompts", str(prompts), "--out", str(tmp_path / "o"),
                  flag, value])
        assert exc.value.code == 2


def test_shipped_generator_and_lora_load_in_diffusers_and_match_our_sampling():
    from training.grpo.shipped import GENERATORS, LORAS, lora_file_spec

    generator, lora = GENERATORS["shapes"], LORAS["shapes-grpo"]
    assert (generator / "model_index.json").is_file() and lora.is_file(), "the shapes assets are part of the pack"
    total = sum(f.stat().st_size for f in generator.rglob("*") if f.is_file()) + lora.stat().st_size
    assert total <= 25 * 2**20  # the pack's size budget for the embedded generator and its LoRA
    rank, targets = lora_file_spec(lora)
    assert rank == 32 and "attn.to_q" in targets
    with one_torch_thread():
        assert _compare_with_pipeline(generator) < 1e-4
        assert _compare_with_pipeline(generator, lora) < 1e-4  # FluxPipeline.load_lora_weights == our LoRA
