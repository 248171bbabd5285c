import json
import time
from pathlib import Path

import pytest

from nodes.logic.discovery import (
    SCORER_MARKER,
    ScorerChoiceError,
    folder_fingerprint,
    folder_kind,
    list_scorers,
    resolve_scorer,
)


def make_scorer(path):
    path.mkdir(parents=True)
    (path / SCORER_MARKER).write_text("{}")
    return path


def make_hf(path, model_type="qwen2_5_vl"):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": model_type}))
    return path


@pytest.fixture
def roots(tmp_path):
    a, b = tmp_path / "models_a", tmp_path / "models_b"
    make_scorer(a / "my_scorer")
    make_hf(a / "Qwen" / "Qwen2.5-VL-7B-Instruct")  # org/name layout, two levels deep
    make_hf(a / "llama", model_type="llama")  # wrong kind: not listed
    make_scorer(a / ".hidden")
    (a / "notes").mkdir()
    make_scorer(b / "my_scorer")  # same name in a later root: the first root wins
    make_scorer(b / "other")
    builtin = make_scorer(tmp_path / "assets" / "shapes")
    return [str(a), str(b)], builtin


def test_lists_scorers_and_qwen_folders_builtin_first(roots):
    paths, builtin = roots
    found = list_scorers(paths, builtin)
    assert [f.name for f in found] == ["shapes", "my_scorer", "other", "Qwen/Qwen2.5-VL-7B-Instruct"]
    kinds = {f.name: (f.kind, f.mode) for f in found}
    assert kinds["shapes"] == ("scorer", "reward")
    assert kinds["Qwen/Qwen2.5-VL-7B-Instruct"] == ("qwen2_5_vl", "zero-shot")
    assert str(found[1].path).startswith(paths[0])


def test_builtin_shadows_a_user_folder_named_shapes(roots, tmp_path):
    paths, builtin = roots
    make_scorer(Path(paths[1]) / "shapes")
    found = [f for f in list_scorers(paths, builtin) if f.name == "shapes"]
    assert len(found) == 1 and found[0].path == builtin
    assert resolve_scorer("shapes", paths, tmp_path / "missing").path == Path(paths[1]) / "shapes"


def test_builtins_beside_shapes_are_listed_second_and_shadow_user_folders(roots):
    paths, builtin = roots
    gen = make_scorer(builtin.parent / "shapes-gen")
    make_scorer(Path(paths[0]) / "shapes-gen")
    found = list_scorers(paths, builtin)
    assert [f.name for f in found][:3] == ["shapes", "shapes-gen", "my_scorer"]
    assert [f.path for f in found if f.name == "shapes-gen"] == [gen]
    assert resolve_scorer("shapes-gen", paths, builtin).path == gen


def test_the_pack_lists_both_shipped_shapes_scorers():
    from nodes.logic.discovery import BUILTINS

    assert [f.name for f in list_scorers([])] == list(BUILTINS) == ["shapes", "shapes-gen"]


def test_builtin_is_listed_only_when_installed(roots, tmp_path):
    paths, _ = roots
    names = [f.name for f in list_scorers(paths, tmp_path / "missing")]
    assert "shapes" not in names
    with pytest.raises(ScorerChoiceError, match="built-in 'shapes' demo scorer is not installed"):
        resolve_scorer("shapes", paths, tmp_path / "missing")


def test_resolve_valid_choices(roots):
    paths, builtin = roots
    assert resolve_scorer("shapes", paths, builtin).path == builtin
    assert resolve_scorer("Qwen/Qwen2.5-VL-7B-Instruct", paths, builtin).mode == "zero-shot"


@pytest.mark.parametrize("bad", ["../models_b/other", "/etc", "my_scorer/..", "", "  ", "C:/x", None])
def test_names_outside_the_list_are_refused(roots, bad):
    paths, builtin = roots
    with pytest.raises(ScorerChoiceError):
        resolve_scorer(bad, paths, builtin)


def test_unknown_name_lists_what_is_available(roots):
    paths, builtin = roots
    with pytest.raises(ScorerChoiceError) as err:
        resolve_scorer("nope", paths, builtin)
    assert "'nope' was not found" in str(err.value) and "my_scorer" in str(err.value) and paths[0] in str(err.value)


def test_wrong_kind_folder_is_named_with_the_reason(roots):
    paths, builtin = roots
    with pytest.raises(ScorerChoiceError) as err:
        resolve_scorer("llama", paths, builtin)
    assert "llama" in str(err.value) and "'llama'" in str(err.value) and "qwen2_5_vl" in str(err.value)
    with pytest.raises(ScorerChoiceError, match="neither spatialscore.json"):
        resolve_scorer("notes", paths, builtin)


def test_folder_kind_reports_broken_config(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    kind, reason = folder_kind(bad)
    assert kind is None and "cannot be read as JSON" in reason
    assert folder_kind(tmp_path / "absent")[0] is None


def test_missing_roots_give_an_empty_list(tmp_path):
    assert list_scorers([str(tmp_path / "nothing")], tmp_path / "none") == []


def test_fingerprint_changes_when_the_folder_changes(roots):
    paths, builtin = roots
    folder = resolve_scorer("my_scorer", paths, builtin)
    before = folder_fingerprint(folder)
    assert folder_fingerprint(folder) == before
    time.sleep(0.01)
    (folder.path / "head.safetensors").write_bytes(b"x")
    assert folder_fingerprint(folder) != before
