"""The shapes recipe's generator stage: which command each text-encoder choice runs (nothing is trained here)."""

from pathlib import Path

from training.grpo.recipes import shapes


def _commands(monkeypatch, tmp_path: Path, settings, t5):
    ran = []
    monkeypatch.setattr(shapes, "_run", ran.append)
    shapes.generator(tmp_path, 2800, settings, t5)
    return ran


def test_frozen_t5_generator_runs_one_process_at_the_shifted_noise_levels(monkeypatch, tmp_path):
    (cmd,) = _commands(monkeypatch, tmp_path, shapes.FROZEN_T5, tmp_path / "text_encoder_2")
    assert "torch.distributed.run" not in cmd  # one process: the shipped generator's run, step for step
    flags = dict(zip(cmd, cmd[1:], strict=False))
    assert flags["--batch"] == "32" and flags["--sigma-mean"] == "0.5" and flags["--steps"] == "2800"
    assert flags["--text-encoder"] == str(tmp_path / "text_encoder_2")


def test_joint_generator_keeps_the_first_recipe(monkeypatch, tmp_path):
    (cmd,) = _commands(monkeypatch, tmp_path, shapes.JOINT, None)
    assert "--nproc_per_node=2" in cmd and "--text-encoder" not in cmd
    flags = dict(zip(cmd, cmd[1:], strict=False))
    assert flags["--batch"] == "64" and flags["--sigma-mean"] == "0.0"


def test_a_finished_generator_is_not_trained_again(monkeypatch, tmp_path):
    (tmp_path / "generator").mkdir()
    (tmp_path / "generator" / "model_index.json").write_text("{}")
    assert _commands(monkeypatch, tmp_path, shapes.FROZEN_T5, None) == []
