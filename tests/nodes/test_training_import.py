import subprocess
import sys
from pathlib import Path

import pytest

from nodes.logic import training_import
from nodes.logic.training_import import import_training, missing_dependency

ROOT = Path(__file__).resolve().parents[2]


def test_missing_dependency_names_the_package_and_the_fix():
    err = missing_dependency(ModuleNotFoundError("No module named 'peft'", name="peft"))
    assert "'peft'" in str(err) and "requirements.txt" in str(err) and "-m pip install" in str(err)


def test_a_missing_dependency_during_import_becomes_a_clear_error(monkeypatch):
    def fail(submodule):
        raise ModuleNotFoundError("No module named 'transformers'", name="transformers")

    monkeypatch.setattr(training_import, "_import_training", fail)
    with pytest.raises(ImportError, match="SpatialScore needs the Python package 'transformers'"):
        import_training("reward")


# the pack loaded as ComfyUI loads it: a package under a path-like name, its root not on sys.path
LOAD_PACK = f"""
import importlib, importlib.util, sys
spec = importlib.util.spec_from_file_location("custom_nodes/pack", {str(ROOT / "__init__.py")!r},
                                              submodule_search_locations=[{str(ROOT)!r}])
pack = importlib.util.module_from_spec(spec); sys.modules[spec.name] = pack; spec.loader.exec_module(pack)
t = importlib.import_module("custom_nodes/pack.nodes.logic.training_import")
"""


def test_imports_the_pack_training_from_outside_the_repo_without_leaving_it_on_sys_path():
    code = LOAD_PACK + (f"m = t.import_training('reward'); "
                        f"print(m.__file__.startswith({str(ROOT)!r}), {str(ROOT)!r} in sys.path)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


def test_a_foreign_training_module_is_refused(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "__init__.py").write_text("")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import training\n" + LOAD_PACK +
            "try:\n    t.import_training('reward')\nexcept ImportError as e:\n    print('REFUSED', e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert "REFUSED another module named 'training'" in out.stdout, out.stdout + out.stderr
