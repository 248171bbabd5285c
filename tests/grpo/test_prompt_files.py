"""Prompt files that are not prompt files (a folder, binary or non-UTF-8 bytes, a 10 MB line), and the sampling CLIs
around them: one line naming the file and what was expected, exit 2, before any model loads."""

from __future__ import annotations

import os
import tracemalloc

import pytest

from training.grpo.cli import sample as sample_module
from training.grpo.prompts import MAX_PROMPT_CHARS, PromptFileError, load_prompts

PROMPT = "a red circle to the left of a blue square"


@pytest.fixture
def no_models(monkeypatch):
    """Any model load fails the test: the checks must come first."""
    import training.reward.scorer as scorer_module

    monkeypatch.setattr(sample_module, "load_policy", lambda *a, **k: pytest.fail("the generator loaded"))
    monkeypatch.setattr(scorer_module, "load_scorer", lambda *a, **k: pytest.fail("the scorer loaded"))


@pytest.fixture
def bad_files(tmp_path):
    folder = tmp_path / "prompts"
    folder.mkdir()
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(f"{PROMPT}\nun cercle rouge \xe0 gauche\n".encode("latin-1"))
    png = tmp_path / "picture.txt"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"a red circle\x00\x00\n")
    long = tmp_path / "long.txt"
    long.write_text(f"{PROMPT}\n" + "x" * 10_000_000 + "\n")
    return {"folder": folder, "latin1": latin1, "png": png, "nul": nul, "long": long}


@pytest.mark.parametrize("which, words", [
    ("folder", "is a folder; expected a prompt file (.txt, one prompt a line, or .jsonl)"),
    ("latin1", "latin1.txt:2: byte 0xe0 is not UTF-8; a prompt file is UTF-8 text"),
    ("png", "picture.txt:1: byte 0x89 is not UTF-8"),
    ("nul", "nul.txt:1: a NUL byte; this is a binary file"),
    ("long", f"long.txt:2: a line of more than {4 * MAX_PROMPT_CHARS + 1024} bytes; a prompt is at most "
             f"{MAX_PROMPT_CHARS} characters"),
])
def test_files_that_hold_no_prompts_are_named(bad_files, which, words):
    with pytest.raises(PromptFileError) as caught:
        load_prompts(bad_files[which])
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_10_mb_line_is_refused_without_reading_it_whole(bad_files):
    tracemalloc.start()
    try:
        with pytest.raises(PromptFileError, match="a line of more than"):
            load_prompts(bad_files["long"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak  # the file is 10 MB; only a line's worth of it is ever read


def test_prompt_length_limit_in_both_formats(tmp_path):
    at_limit = tmp_path / "ok.txt"
    at_limit.write_text("y" * MAX_PROMPT_CHARS + "\n")
    assert load_prompts(at_limit) == ["y" * MAX_PROMPT_CHARS]
    over = tmp_path / "over.jsonl"
    over.write_text('{"prompt": "' + "z" * (MAX_PROMPT_CHARS + 1) + '"}\n')
    with pytest.raises(PromptFileError, match=rf"over.jsonl:1: a prompt of {MAX_PROMPT_CHARS + 1} characters; the "
                                              rf"limit is {MAX_PROMPT_CHARS}"):
        load_prompts(over)


def test_line_breaks_and_comments_are_read_as_before(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes(f"# comment\r\n{PROMPT}\rsecond\r\n\n  third  ".encode())
    assert load_prompts(path) == [PROMPT, "second", "third"]


def _one_error_line(capsys, main, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("which", ["folder", "png", "long"])
def test_sample_cli_refuses_bad_prompt_files(bad_files, tmp_path, capsys, no_models, which):
    out = tmp_path / "out"
    line = _one_error_line(capsys, sample_module.main, ["--model", "shapes", "--prompts", str(bad_files[which]),
                                                        "--out", str(out)])
    assert str(bad_files[which]) in line
    assert not out.exists()


def test_sample_cli_device_cuda_without_cuda(tmp_path, capsys, no_models, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    prompts = tmp_path / "p.txt"
    prompts.write_text(PROMPT + "\n")
    line = _one_error_line(capsys, sample_module.main, ["--model", "shapes", "--prompts", str(prompts), "--out",
                                                        str(tmp_path / "out"), "--device", "cuda"])
    assert "--device cuda: this torch has no usable CUDA GPU" in line


def test_sample_eval_refuses_a_binary_prompt_file_and_a_folder_for_json(bad_files, tmp_path, capsys, monkeypatch):
    from training.grpo.cli import sample_eval
    from training.grpo.evaluate import oracle_rates

    monkeypatch.setattr(oracle_rates, "judged_samples", lambda *a, **k: pytest.fail("sampled before the checks"))
    line = _one_error_line(capsys, sample_eval.main, ["--model", "shapes", "--prompts", str(bad_files["png"])])
    assert "picture.txt:1: byte 0x89 is not UTF-8" in line
    prompts = tmp_path / "p.txt"
    prompts.write_text(PROMPT + "\n")
    line = _one_error_line(capsys, sample_eval.main, ["--model", "shapes", "--prompts", str(prompts), "--json",
                                                      str(bad_files["folder"])])
    assert f"--json {bad_files['folder']} is a folder; give a file name" in line
    os.mkfifo(tmp_path / "grid.png")
    line = _one_error_line(capsys, sample_eval.main, ["--model", "shapes", "--prompts", str(prompts), "--grid",
                                                      str(tmp_path / "grid.png")])
    assert "--grid" in line and "is a FIFO" in line
