"""python -m training.grpo.evaluate end to end: the shapes world's oracle rates equal sample_eval's for the same
seed, with each shipped LoRA by name (shapes-grpo, shapes-fast); the four public sets run on the tiny random
pipeline and scorers (the pairwise judge included); a prompt set the scorer cannot read and a LoRA for another model
are refused with one line and exit 2 before any sampling."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from training.grpo.evaluate import __main__ as cli
from training.grpo.evaluate import run as evaluate_run

from .conftest import make_policy, perturb_lora


def _run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error_line(argv, capsys) -> str:
    code, _, err = _run(argv, capsys)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1, err
    return lines[0]


@pytest.fixture
def no_sampling(monkeypatch):
    monkeypatch.setattr(evaluate_run, "sample_variants", lambda *a, **k: pytest.fail("sampled before the checks"))


@pytest.mark.parametrize("lora, n_prompts", [("shapes-grpo", 6), ("shapes-fast", 4)])
def test_shapes_oracle_rates_equal_sample_eval_for_the_same_seed(lora, n_prompts, tmp_path, capsys):
    """Each shipped LoRA by name: `python -m training.grpo.sample_eval --model shapes [--lora NAME] --prompts FILE`
    resolves it and runs, and its oracle figures are the evaluate command line's for the same seed."""
    from training.grpo.cli import sample_eval

    prompts = tmp_path / "heldout.txt"
    lines = [line for line in open(evaluate_run.__file__.replace("evaluate/run.py", "configs/shapes_heldout.txt"))
             if line.strip() and not line.startswith("#")][:n_prompts]  # fmt: skip
    prompts.write_text("".join(lines))
    code, out, err = _run(["--model", "shapes", "--lora", lora, "--prompts", str(prompts), "--seed", "3",
                           "--out", str(tmp_path / "eval")], capsys)  # fmt: skip
    assert code == 0, err
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    for name, variant_lora in (("base", None), (lora, lora)):
        argv = ["--model", "shapes", "--prompts", str(prompts), "--seed", "3"] + (["--lora", lora] if variant_lora
                                                                                  else [])  # fmt: skip
        assert sample_eval.main(argv) == 0
        expected = json.loads(capsys.readouterr().out)
        assert (expected["lora"], expected["prompts"]) == (variant_lora, n_prompts)
        figures = report["per_variant"][name]["oracle"]
        assert figures and figures == {k: expected[k] for k in figures}, name
    pair = report["pairs"][0]
    assert (pair["a"], pair["b"]) == ("base", lora)
    assert 0 <= pair["scorer"]["low"] <= pair["scorer"]["win_rate"] <= pair["scorer"]["high"] <= 1
    assert pair["judge"]["available"] is False
    assert "pairwise judge needs a plain Qwen2.5-VL" in pair["judge"]["why"]
    md = (tmp_path / "eval" / "report.md").read_text()
    assert f"{lora} beats base on" in md and "(c) all relations" in md and "Per relation word" in md
    assert report["pictures"] and (tmp_path / "eval" / report["pictures"][0]).is_file()


@pytest.fixture(scope="module")
def tiny_lora(tiny_flux_dir, tmp_path_factory):
    from training.grpo.lora import save_lora_file

    policy = make_policy(tiny_flux_dir)
    perturb_lora(policy, scale=0.3)
    return save_lora_file(policy.lora_state_dict(), tmp_path_factory.mktemp("lora") / "tiny.safetensors")


TINY = ["--num-steps", "2", "--height", "64", "--width", "64", "--limit", "2", "--images-per-prompt", "2"]


@pytest.mark.parametrize("bench, scorer", [("geneval-position", "zero-shot"), ("t2i-compbench-spatial", "zero-shot"),
                                           ("unigenbench-layout", "reward"), ("dpg", "reward")])  # fmt: skip
def test_public_sets_run_end_to_end_on_tiny_models(bench, scorer, tiny_flux_dir, tiny_lora, tiny_base,
                                                   tiny_scorer_full, tmp_path, capsys):  # fmt: skip
    judge = [] if scorer == "zero-shot" else ["--judge", str(tiny_base)]
    out = tmp_path / "eval"
    code, _, err = _run(["--model", str(tiny_flux_dir), "--lora", str(tiny_lora), "--bench", bench, "--scorer",
                         str(tiny_base if scorer == "zero-shot" else tiny_scorer_full), *judge, *TINY,
                         "--out", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    assert report["prompts"] == 2 and report["images_per_prompt"] == 2 and report["variants"] == ["base", "tiny"]
    assert not report["oracle"]
    judged = report["pairs"][0]["judge"]
    assert 0 <= judged["low"] <= judged["win_rate"] <= judged["high"] <= 1
    assert 0 < judged["mean_preference"] < 1
    confident = report["per_variant"]["base"]["confident_share"]
    assert (confident is None) == (scorer == "zero-shot")
    assert len(report["per_prompt"]) == 2 and all(len(r["scores"]["tiny"]) == 2 for r in report["per_prompt"])
    assert "pairwise judge: B wins" in (out / "report.md").read_text()


def test_the_shapes_scorer_on_geneval_is_refused_before_sampling(tmp_path, capsys, no_sampling):
    line = _error_line(["--model", "shapes", "--bench", "geneval-position", "--out", str(tmp_path / "e")], capsys)
    assert "cannot judge this prompt set: 100 of 100 prompts have words it does not know" in line
    assert "Qwen2.5-VL scorer" in line and not (tmp_path / "e").exists()


def test_a_lora_for_another_model_is_refused_before_sampling(tmp_path, capsys, no_sampling, tiny_lora):
    # FLUX.1-dev's block 18 does not exist in the shapes generator (2 double blocks)
    flux_dev = tmp_path / "flux_dev_lora.safetensors"
    save_file({"transformer.transformer_blocks.18.attn.to_q.lora_A.weight": torch.zeros(4, 3072),
               "transformer.transformer_blocks.18.attn.to_q.lora_B.weight": torch.zeros(3072, 4)}, str(flux_dev))
    line = _error_line(["--model", "shapes", "--lora", str(flux_dev), "--bench", "shapes-heldout", "--out",
                        str(tmp_path / "e")], capsys)  # fmt: skip
    assert "made for another model" in line and "transformer_blocks.18.attn.to_q is not a module" in line
    # the tiny FLUX's LoRA: the same module names, other sizes
    line = _error_line(["--model", "shapes", "--lora", str(tiny_lora), "--bench", "shapes-heldout", "--out",
                        str(tmp_path / "e")], capsys)  # fmt: skip
    assert "made for another model" in line and "inputs in the LoRA" in line
    sdxl = tmp_path / "sdxl_lora.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 320)}, str(sdxl))
    line = _error_line(["--model", "shapes", "--lora", str(sdxl), "--bench", "shapes-heldout", "--out",
                        str(tmp_path / "e")], capsys)  # fmt: skip
    assert "another model family" in line and "lora_unet_down_blocks" in line


def test_other_bad_input_gets_one_line(tmp_path, capsys, no_sampling):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    line = _error_line(["--model", "shapes", "--bench", "shapes-heldout", "--out", str(tmp_path / "full")], capsys)
    assert "not an empty folder" in line
    line = _error_line(["--model", "/nowhere", "--bench", "shapes-heldout", "--out", str(tmp_path / "e")], capsys)
    assert "not a FluxPipeline folder" in line
    line = _error_line(["--model", "/nowhere", "--prompts", str(tmp_path / "none.txt"), "--out", str(tmp_path / "e")],
                       capsys)  # fmt: skip
    assert "prompt file not found" in line
