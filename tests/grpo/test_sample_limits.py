"""python -m training.grpo.sample: sizes the model does not take, sizes beyond any sane picture and batches that
cannot fit in the free memory get one line and exit 2 before the model loads, and nothing is written."""

from __future__ import annotations

import re

import pytest

from training.common import memory_guard
from training.grpo.cli.sample import main


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("".join(f"a red circle to the left of a blue square number {i}\n" for i in range(8)))
    return path


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("extra, words", [
    (["--height", "7"], "--height 7: expected a multiple of 8 (this model's VAE scale 4 x Flux's 2x2 patches), "
                        "e.g. 8"),
    (["--width", "60"], "--width 60: expected a multiple of 8 (this model's VAE scale 4 x Flux's 2x2 patches), "
                        "e.g. 56"),
    (["--height", "100000", "--width", "100000"], "--height 100000: at most 8192 pixels a side"),
    (["--height", "64", "--width", "100000"], "--width 100000: at most 8192 pixels a side"),
    (["--num-steps", "100000000"], "--num-steps 100000000: at most 1000 sampling steps"),
])  # fmt: skip
def test_sizes_and_steps_the_model_does_not_take(tmp_path, prompts, capsys, extra, words):
    line = _error(capsys, ["--model", "shapes", "--prompts", str(prompts), "--out", str(tmp_path / "out"), *extra])
    assert line == f"error: {words}"
    assert not (tmp_path / "out").exists()


def test_a_batch_that_cannot_fit_names_the_largest_batch_that_does(tmp_path, prompts, capsys, monkeypatch):
    monkeypatch.setattr(memory_guard, "available_ram", lambda: memory_guard.GIB)
    line = _error(capsys, ["--model", "shapes", "--prompts", str(prompts), "--out", str(tmp_path / "out"),
                           "--height", "1024", "--width", "1024", "--device", "cpu"])
    found = re.fullmatch(r"error: --batch-size 8 at 1024x1024 needs about ([0-9.]+) GiB, 1\.0 GiB free in RAM: "
                         r"at most --batch-size (\d) fits", line)
    assert found and float(found[1]) > 1 and 1 <= int(found[2]) < 8, line
    assert not (tmp_path / "out").exists()


def test_a_size_that_cannot_fit_even_one_at_a_time_names_the_largest_size(tmp_path, prompts, capsys, monkeypatch):
    monkeypatch.setattr(memory_guard, "available_ram", lambda: memory_guard.GIB)
    line = _error(capsys, ["--model", "shapes", "--prompts", str(prompts), "--out", str(tmp_path / "out"),
                           "--height", "8192", "--width", "4096", "--device", "cpu"])
    found = re.fullmatch(r"error: --batch-size 8 at 4096x8192 needs about [0-9.]+ GiB, 1\.0 GiB free in RAM: not "
                         r"even --batch-size 1 fits at 4096x8192; at most (\d+)x(\d+) fits at --batch-size 1", line)
    assert found, line
    width, height = int(found[1]), int(found[2])
    assert height % 8 == 0 and width % 8 == 0 and abs(height - 2 * width) <= 8 and height < 8192
