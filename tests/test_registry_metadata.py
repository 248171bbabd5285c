"""Registry metadata: the ComfyUI and frontend floors the pack was tested with, and no torch pin anywhere."""

from __future__ import annotations

import re
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _tested_comfyui() -> str:
    """The ComfyUI version scripts/comfyui_setup.sh checks out for the integration test."""
    return re.search(r"# ComfyUI (\d+\.\d+\.\d+), the version tested", (ROOT / "scripts" / "comfyui_setup.sh").read_text()).group(1)


def test_requires_comfyui_is_the_tested_floor():
    comfy = PYPROJECT["tool"]["comfy"]
    assert comfy["requires-comfyui"] == f">={_tested_comfyui()}"
    assert comfy["PublisherId"] and comfy["DisplayName"]


def test_frontend_floor_is_declared_for_the_registry_only():
    deps = PYPROJECT["project"]["dependencies"]
    assert [d for d in deps if d.startswith("comfyui-frontend-package")] == ["comfyui-frontend-package>=1.27.10"]
    requirements = (ROOT / "requirements.txt").read_text()
    assert "comfyui-frontend-package" not in requirements  # ComfyUI brings its own, pinned
    for text in (requirements, "\n".join(deps)):
        assert not re.search(r"^\s*\"?torch([<>=~ ]|$)", text, re.M)  # users bring their own (CUDA) torch


def test_repository_url_is_what_the_readme_tells_users_to_clone():
    url = PYPROJECT["project"]["urls"]["Repository"]
    assert f"git clone {url}" in (ROOT / "README.md").read_text()
