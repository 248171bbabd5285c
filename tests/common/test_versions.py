"""The dependency floors: declared once, pinned by requirements-min.txt, and checked with one line per problem.

Old versions are faked through importlib.metadata; nothing is installed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
import subprocess
import sys
import types
from importlib import metadata
from pathlib import Path

import pytest

from training.common import versions

ROOT = Path(__file__).resolve().parents[2]

# Run a module the way `python -m` does (sys.argv[0] is "-m" while its packages are imported), with transformers
# reported as 4.57.6 by the package metadata.
FAKE_OLD_TRANSFORMERS = """
import importlib.metadata as md, runpy, sys
real = md.version
md.version = lambda name: "4.57.6" if name == "transformers" else real(name)
module, sys.argv = sys.argv[1], ["-m", "--help"]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def fake_versions(monkeypatch, **fake: str | None) -> None:
    """Report these versions (None: not installed) and the real ones for every other package."""
    real = metadata.version

    def version(name: str) -> str:
        key = name.lower().replace("-", "_")
        if key in fake:
            if fake[key] is None:
                raise metadata.PackageNotFoundError(name)
            return fake[key]
        return real(name)

    monkeypatch.setattr(metadata, "version", version)


def test_every_requirement_is_a_floor_and_requirements_min_pins_exactly_them():
    floors = versions.read_floors(ROOT / "requirements.txt")
    pins = {}
    for raw in (ROOT / "requirements-min.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, pin = line.partition("==")
            pins[name.strip()] = pin.split(";")[0].strip()
    assert {name: versions.release(v) for name, v in floors.items()} == {
        name: versions.release(pins[name]) for name in floors
    }
    assert "torch" not in floors and "torch" not in pins  # the pack never installs torch
    assert versions.floors()["torch"] == versions.TORCH_FLOOR


def test_pyproject_declares_the_same_floors():
    from training.common.config_loading import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = [d.replace("'", '"') for d in declared if not d.startswith("comfyui-frontend-package")]
    requirements = [line.split("#", 1)[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert lines == [line for line in requirements if line]


def test_readme_states_the_torch_floor():
    assert f"torch {versions.TORCH_FLOOR}" in (ROOT / "README.md").read_text()


def test_releases_compare_as_numbers():
    assert versions.release("2.13.0+cpu") == versions.release("2.13") == (2, 13)
    assert versions.release("5.10.1") > versions.release("5.4")
    assert versions.release("0.35.2") > versions.release("0.35")
    assert versions.release("1.0.0rc1") == versions.release("1")


def test_the_installed_environment_meets_every_floor():
    assert versions.unmet_requirements() == []


def test_an_old_version_is_one_line_with_both_versions_and_the_fix(monkeypatch):
    fake_versions(monkeypatch, transformers="4.57.6")
    floor = versions.floors()["transformers"]
    (line,) = versions.unmet_requirements()
    assert line == (f"transformers 4.57.6 is installed, SpatialScore needs {floor} or newer: "
                    f'{sys.executable} -m pip install "transformers>={floor}"')


def test_a_missing_package_and_an_old_torch_each_get_their_line(monkeypatch):
    fake_versions(monkeypatch, diffusers=None, torch="2.1.0+cu121")
    lines = versions.unmet_requirements()
    assert len(lines) == 2
    assert lines[0].startswith("diffusers is not installed, SpatialScore needs ")
    assert lines[1].startswith(f"torch 2.1.0+cu121 is installed, SpatialScore needs {versions.TORCH_FLOOR} ")
    assert versions.TORCH_HELP in lines[1]


@pytest.mark.parametrize("module", ["training.reward", "training.grpo", "training.dataset", "training.bestofn",
                                    "training.grpo.sample", "training.reward.recipes.shapes"])
def test_a_command_line_with_an_old_dependency_exits_2_with_the_line(module):
    out = subprocess.run([sys.executable, "-c", FAKE_OLD_TRANSFORMERS, module], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 2, out.stderr
    assert out.stdout == ""  # stopped before argparse printed the help
    floor = versions.floors()["transformers"]
    assert out.stderr.splitlines() == [
        f'error: transformers 4.57.6 is installed, SpatialScore needs {floor} or newer: '
        f'{sys.executable} -m pip install "transformers>={floor}"'
    ]


@pytest.fixture
def load_pack(monkeypatch):
    """Import the pack's root module as ComfyUI does (a package from a folder), beside a stand-in comfy_api."""
    comfy_api = types.ModuleType("comfy_api")
    latest = types.ModuleType("comfy_api.latest")

    class ComfyExtension:
        async def get_node_list(self):
            raise NotImplementedError

    latest.ComfyExtension = ComfyExtension
    monkeypatch.setitem(sys.modules, "comfy_api", comfy_api)
    monkeypatch.setitem(sys.modules, "comfy_api.latest", latest)
    name = "spatialscore_pack_under_test"

    def load():
        spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py",
                                                      submodule_search_locations=[str(ROOT)])
        pack = importlib.util.module_from_spec(spec)
        sys.modules[name] = pack
        spec.loader.exec_module(pack)
        return pack, ComfyExtension

    yield load
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def test_the_pack_with_an_old_dependency_registers_no_nodes_and_logs_one_line(monkeypatch, load_pack, caplog):
    fake_versions(monkeypatch, transformers="4.57.6")
    pack, ComfyExtension = load_pack()
    with caplog.at_level(logging.INFO):
        extension = asyncio.run(pack.comfy_entrypoint())
    assert isinstance(extension, ComfyExtension)  # ComfyUI loads it: no IMPORT FAILED
    assert asyncio.run(extension.get_node_list()) == []
    assert pack.WEB_DIRECTORY is None
    assert not any(m.startswith(pack.__name__ + ".nodes") for m in sys.modules)  # nothing of the pack ran
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is None
    message = record.getMessage()
    assert "\n" not in message
    floor = versions.floors()["transformers"]
    assert re.fullmatch(rf"SpatialScore registers no nodes: transformers 4\.57\.6 is installed, SpatialScore needs "
                        rf"{re.escape(floor)} or newer: .* -m pip install \"transformers>={re.escape(floor)}\", "
                        r"then restart ComfyUI", message), message


def test_the_pack_in_a_good_environment_keeps_its_web_folder(load_pack):
    pack, _ = load_pack()
    assert pack.UNMET_REQUIREMENTS == [] and pack.WEB_DIRECTORY == "./web"


def test_the_dry_runs_say_they_need_a_newer_torch(monkeypatch, capsys):
    from benchmarks.dryrun.__main__ import DRYRUN_TORCH, main

    assert versions.release(DRYRUN_TORCH) > versions.release(versions.TORCH_FLOOR)
    fake_versions(monkeypatch, torch=versions.TORCH_FLOOR + ".0")
    assert main(["score", "--shape", "tiny", "--px", "64", "--batch", "1"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: the dry runs need a newer torch than the rest of the pack: torch {versions.TORCH_FLOOR}.0 is "
        f"installed, SpatialScore needs {DRYRUN_TORCH} or newer: {sys.executable} -m pip install "
        f'"torch>={DRYRUN_TORCH}" (the build for your GPU: {versions.TORCH_HELP})'
    ]
