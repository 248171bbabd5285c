"""Are the installed dependencies at least the versions the pack is tested with?

The floors are read from the pack's requirements.txt, the one place they are declared (requirements-min.txt pins
exactly them and CI runs the tests on it), and the installed versions from package metadata: nothing is imported,
so the check is cheap and runs before the first import that an old version would break (ComfyUI's import of the
pack, every `python -m training.*`). torch is not in requirements.txt (users bring their own CUDA build), so its
floor is kept here.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"
# The oldest torch the test suite has passed on: 2.11 (a CUDA build from PyPI, run on a CPU; CI's floors run uses
# 2.13, the CPU wheel on its disk). The pack never installs torch; README's install section says the same number.
# Features that need more check it themselves (the fake-tensor dry runs: benchmarks/dryrun).
TORCH_FLOOR = "2.11"
TORCH_HELP = "https://pytorch.org/get-started/locally/"

_REQUIREMENT = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][0-9.]*)\s*(?:;(.*))?")
_MARKER = re.compile(r"""\s*python_version\s*(<|<=|>|>=|==|!=)\s*["']([0-9.]+)["']\s*""")


def release(version: str) -> tuple[int, ...]:
    """The numeric release of a version string: "2.13.0+cpu" -> (2, 13), "1.0.0rc1" -> (1,).

    Trailing zeros are dropped so that 5.4 and 5.4.0 compare equal. A pre-release counts as its release, which
    is close enough for floors that are all final releases.
    """
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    parts = [int(p) for p in match.group(0).split(".")] if match else [0]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _marker_applies(marker: str | None) -> bool:
    """requirements.txt uses only `python_version` markers; anything else is treated as applying."""
    if not marker or not marker.strip():
        return True
    match = _MARKER.fullmatch(marker)
    if match is None:
        return True
    op, version = match.groups()
    here, there = release(f"{sys.version_info.major}.{sys.version_info.minor}"), release(version)
    return {"<": here < there, "<=": here <= there, ">": here > there, ">=": here >= there,
            "==": here == there, "!=": here != there}[op]


def read_floors(path: Path = REQUIREMENTS) -> dict[str, str]:
    """{package: lowest version} from requirements.txt lines `name>=version[; python_version ...]`."""
    floors: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _REQUIREMENT.fullmatch(line)
        if match is None:
            raise ValueError(f"{path}: cannot read {line!r}; every requirement is `name>=version`")
        name, floor, marker = match.groups()
        if _marker_applies(marker):
            floors[name] = floor
    return floors


def floors() -> dict[str, str]:
    """Every floor checked: requirements.txt's (when it ships beside this package) and torch's."""
    found = read_floors() if REQUIREMENTS.is_file() else {}
    return {**found, "torch": TORCH_FLOOR}


def pip_command(name: str, floor: str) -> str:
    python = sys.executable or "python"
    if " " in python:
        python = f'"{python}"'
    return f'{python} -m pip install "{name}>={floor}"'


def problem(name: str, floor: str) -> str | None:
    """One line when `name` is missing or older than `floor`, naming both versions and the fix; else None."""
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        found = f"{name} is not installed"
    else:
        if release(installed) >= release(floor):
            return None
        found = f"{name} {installed} is installed"
    fix = pip_command(name, floor)
    if name == "torch":  # a plain pip install may bring a build for another CUDA (or none on Windows)
        fix += f" (the build for your GPU: {TORCH_HELP})"
    return f"{found}, SpatialScore needs {floor} or newer: {fix}"


def unmet_requirements() -> list[str]:
    """One line per dependency that is missing or below its floor; empty when the environment is right."""
    return [line for name, floor in floors().items() if (line := problem(name, floor)) is not None]


def exit_if_unmet() -> None:
    """The command-line check: the lines on stderr and exit status 2, before any dependency is imported."""
    lines = unmet_requirements()
    if lines:
        for line in lines:
            print(f"error: {line}", file=sys.stderr)
        raise SystemExit(2)
