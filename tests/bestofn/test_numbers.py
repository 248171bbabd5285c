"""python -m training.bestofn: a non-finite number (the guidance, or a scorer's overflowing rewards) gets one line
and exit 2, and no report is written."""

from __future__ import annotations

import pytest

from tests.broken_scorers import overflowing_copy
from tests.threads import one_torch_thread
from training.bestofn.__main__ import main


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("a red circle to the left of a blue square\n")
    return path


def _one_error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]  # besides progress bars
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_guidance_is_refused_before_sampling(tmp_path, prompts, capsys, shapes_generator_dir, value):
    line = _one_error_line(capsys, ["--model", str(shapes_generator_dir), "--scorer", "shapes", "--prompts",
                                    str(prompts), "--n", "2", "--prune", "none", "--num-steps", "2",
                                    f"--guidance={value}", "--out", str(tmp_path / "out")])
    assert f"--guidance {float(value)}: expected a finite number" in line
    assert not (tmp_path / "out").exists()


def test_a_scorer_whose_rewards_overflow_is_one_line(tmp_path, prompts, capsys, shapes_generator_dir,
                                                     tiny_scorer_full):
    scorer = overflowing_copy(tiny_scorer_full, tmp_path / "overflowing")
    with one_torch_thread():
        line = _one_error_line(capsys, ["--model", str(shapes_generator_dir), "--scorer", str(scorer), "--prompts",
                                        str(prompts), "--n", "2", "--prune", "none", "--num-steps", "2",
                                        "--out", str(tmp_path / "out")])
    assert "gave NaN or infinite scores for 2 of 2 images" in line and "fp32" in line
    assert not (tmp_path / "out").exists()
