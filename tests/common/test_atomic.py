import pytest

from training.common.atomic import atomic_dir, write_json


def test_failed_folder_write_keeps_the_old_folder(tmp_path):
    target = tmp_path / "scorer"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("new, half done")
        raise RuntimeError("killed")
    assert (target / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scorer"]


def test_write_json_replaces_whole_file(tmp_path):
    write_json(tmp_path / "x.json", {"a": 1})
    write_json(tmp_path / "x.json", {"b": 2})
    assert (tmp_path / "x.json").read_text().strip().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_atomic_files_and_folders_get_the_umask_permissions_not_temp_file_ones(tmp_path):
    import os
    import stat

    from training.common.atomic import write_text

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "f").write_text("y")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644  # mkstemp would give 0o600
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o755  # mkdtemp would give 0o700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "folder"]  # no temporaries left


def test_safetensors_written_through_atomic_helpers_are_0644_under_umask_022(tmp_path):
    import os

    import torch
    from safetensors.torch import save_file

    from training.common.atomic import atomic_dir, atomic_path

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "lora.safetensors") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp))  # recreates the file 0600
        with atomic_dir(tmp_path / "scorer") as tmp:
            save_file({"w": torch.zeros(2)}, str(tmp / "head.safetensors"))
            (tmp / "sub").mkdir()
            save_file({"w": torch.zeros(2)}, str(tmp / "sub" / "x.safetensors"))
    finally:
        os.umask(old)
    for f in (tmp_path / "lora.safetensors", tmp_path / "scorer" / "head.safetensors",
              tmp_path / "scorer" / "sub" / "x.safetensors"):
        assert f.stat().st_mode & 0o777 == 0o644, f
    assert (tmp_path / "scorer").stat().st_mode & 0o777 == 0o755


def test_is_temp_name_knows_the_names_atomic_writes_leave(tmp_path):
    from training.common.atomic import _fresh_name, is_temp_name

    tmp = _fresh_name(tmp_path / "build.json", lambda p: p.write_text(""))
    assert is_temp_name(tmp.name, "build.json")
    assert not is_temp_name(tmp.name, "manifest.jsonl")
    assert not is_temp_name(".build.json.notes.tmp", "build.json") and not is_temp_name("build.json", "build.json")
