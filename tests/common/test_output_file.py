"""Output files named on a command line: only a regular file is ever replaced, and the check comes before any work."""

import os
import stat

import pytest

from training.common.atomic import atomic_path, write_json, write_text
from training.common.output_file import OutputPathError, check_output_file, what_is_at


@pytest.fixture
def odd_paths(tmp_path):
    """A FIFO, a symbolic link to a file of the user's, and a folder, each at a path a CLI could be given."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    mine = tmp_path / "mine.txt"
    mine.write_text("the user's own file\n")
    link = tmp_path / "link.json"
    link.symlink_to(mine)
    folder = tmp_path / "folder"
    folder.mkdir()
    return {"fifo": fifo, "link": link, "folder": folder, "mine": mine}


def _kinds(tmp_path):
    return {p.name: stat.S_IFMT(os.lstat(p).st_mode) for p in tmp_path.iterdir()}


@pytest.mark.parametrize("which, words", [("fifo", "is a FIFO (named pipe), not a regular file"),
                                          ("link", "is a symbolic link (to "),
                                          ("folder", "is a folder; give a file name, e.g. ")])
def test_check_output_file_refuses_what_is_not_a_regular_file(odd_paths, which, words):
    with pytest.raises(OutputPathError, match="^--json ") as caught:
        check_output_file(odd_paths[which], "--json", example="eval.json")
    assert words in str(caught.value) and str(odd_paths[which]) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_device_node_is_refused():
    assert what_is_at("/dev/null") == "a device node"
    with pytest.raises(OutputPathError, match=r"--output /dev/null is a device node, not a regular file"):
        check_output_file("/dev/null", "--output")


def test_new_and_regular_files_pass_and_nothing_is_created(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    assert check_output_file(tmp_path / "old.json", "--json") == tmp_path / "old.json"
    assert check_output_file(tmp_path / "new" / "deeper" / "x.json", "--json") == tmp_path / "new/deeper/x.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]  # no probe, no folder left behind
    blocker = tmp_path / "old.json"
    with pytest.raises(OutputPathError, match="cannot write there"):
        check_output_file(blocker / "x.json", "--json")


@pytest.mark.parametrize("which", ["fifo", "link", "folder"])
def test_atomic_writes_never_replace_a_link_a_fifo_or_a_folder(odd_paths, tmp_path, which):
    before = _kinds(tmp_path)
    with pytest.raises(OutputPathError, match="not a regular file; refusing to replace it"):
        write_json(odd_paths[which], {"a": 1})
    assert _kinds(tmp_path) == before  # same names, same kinds: no temp file left, nothing replaced
    assert odd_paths["mine"].read_text() == "the user's own file\n"


def test_atomic_path_refuses_what_appears_while_writing(tmp_path):
    target = tmp_path / "scores.json"
    with pytest.raises(OutputPathError, match="FIFO"), atomic_path(target) as tmp:
        tmp.write_text("[]")
        os.mkfifo(target)
    assert stat.S_ISFIFO(os.lstat(target).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.json"]


def test_a_regular_file_is_still_replaced_whole(tmp_path):
    write_text(tmp_path / "a.txt", "old")
    write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new"
