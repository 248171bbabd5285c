"""A --config that is not a TOML text file (a folder, an image, latin-1 bytes, a huge file) is one line naming the file
and what was expected, exit 2, for every stage that reads configs (GRPO and reward training share the reader)."""

from __future__ import annotations

import pytest

from training.grpo.__main__ import main as grpo_main
from training.reward.__main__ import main as reward_main


@pytest.fixture
def configs(tmp_path):
    folder = tmp_path / "conf"
    folder.mkdir()
    png = tmp_path / "picture.toml"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[train]\n# r\xe9glage\nsteps = 3\n'.encode("latin-1"))
    huge = tmp_path / "huge.toml"
    huge.write_text("# " + "x" * (2 * 1024**2) + "\n")
    return {"folder": folder, "png": png, "latin1": latin1, "huge": huge}


CASES = [("folder", "is a folder; expected a TOML config file"),
         ("png", "picture.toml: byte 0x89 at offset 0 is not UTF-8; expected a TOML config file (UTF-8 text)"),
         ("latin1", "latin1.toml: byte 0xe9 at offset 11 is not UTF-8"),
         ("huge", "bytes; a TOML config file is at most 1 MB")]


def _one_error_line(capsys, main, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("which, words", CASES)
def test_grpo_config_that_is_not_toml_text(configs, tmp_path, capsys, which, words):
    line = _one_error_line(capsys, grpo_main, ["--config", str(configs[which]), "--out", str(tmp_path / "run")])
    assert words in line and str(configs[which]) in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("which, words", CASES)
def test_reward_config_that_is_not_toml_text(configs, tmp_path, capsys, which, words):
    line = _one_error_line(capsys, reward_main, ["train", "--config", str(configs[which]), "--out",
                                                 str(tmp_path / "run")])
    assert words in line and str(configs[which]) in line
