"""A reward model whose scores overflow (finite weights, infinite rewards: what fp16/bf16 or a broken head gives)
stops GRPO with one line and exit 2 before any update or checkpoint, not a FloatingPointError traceback."""

from __future__ import annotations

from tests.broken_scorers import overflowing_copy
from training.grpo import __main__ as cli

from ..threads import one_torch_thread


def test_overflowing_rewards_are_one_line(tmp_path, tiny_flux_dir, tiny_scorer_full, capsys):
    scorer = overflowing_copy(tiny_scorer_full, tmp_path / "overflowing")
    out = tmp_path / "run"
    with one_torch_thread():
        rc = cli.main(["--preset", "tiny", "--out", str(out), "--model.path", str(tiny_flux_dir), "--reward.path",
                       str(scorer), "--prompts.num_eval", "0", "--prompts.per_step", "1", "--steps", "1"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert rc == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert "the scorer gave NaN or infinite scores for" in errors[0] and "load it in fp32" in errors[0]
    assert not (out / "checkpoints").exists() and not (out / "lora.safetensors").exists()
