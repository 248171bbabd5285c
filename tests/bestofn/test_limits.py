"""python -m training.bestofn: sizes the model does not take, sizes beyond any sane picture and N candidates that
cannot fit in the free memory get one line and exit 2 before anything loads, and nothing is written."""

from __future__ import annotations

import re

import pytest

from training.bestofn.__main__ import main
from training.common import memory_guard


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red circle to the left of a blue square\n")
    return path


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("extra, words", [
    (["--height", "7"], "--height 7: expected a multiple of 8 (this model's VAE scale 4 x Flux's 2x2 patches)"),
    (["--width", "100"], "--width 100: expected a multiple of 8"),
    (["--height", "100000", "--width", "100000"], "--height 100000: at most 8192 pixels a side"),
    (["--num-steps", "100000000"], "--num-steps 100000000: at most 1000 sampling steps"),
])  # fmt: skip
def test_sizes_and_steps_the_model_does_not_take(tmp_path, prompts, capsys, shapes_generator_dir, extra, words):
    line = _error(capsys, ["--model", str(shapes_generator_dir), "--scorer", "shapes", "--prompts", str(prompts),
                           "--n", "2", "--prune", "none", "--out", str(tmp_path / "out"), *extra])
    assert words in line
    assert not (tmp_path / "out").exists()


def test_n_that_cannot_fit_names_the_largest_n_that_does(tmp_path, prompts, capsys, shapes_generator_dir,
                                                         monkeypatch):
    """With 4 GiB free: sampling 1024 candidates of the shapes generator at 64x64 on this CPU took 1.09 GB, so
    the largest N the estimate allows must be below 4 x 1024 / 1.09 = 3760 (on the safe side), and not absurdly
    low either."""
    monkeypatch.setattr(memory_guard, "available_ram", lambda: 4 * memory_guard.GIB)
    line = _error(capsys, ["--model", str(shapes_generator_dir), "--scorer", "shapes", "--prompts", str(prompts),
                           "--n", "100000", "--out", str(tmp_path / "out"), "--device", "cpu"])
    found = re.fullmatch(r"error: --n 100000 at 64x64 needs about ([0-9.]+) GiB, 4\.0 GiB free in RAM: "
                         r"at most --n (\d+) fits", line)
    assert found, line
    assert float(found[1]) > 4 and 1000 <= int(found[2]) < 3760
    assert not (tmp_path / "out").exists()
