"""The registry archive holds the pack alone, built the way comfy-cli builds it.

`comfy node pack` and `comfy node publish` both call `comfy_cli.file_utils.zip_files(name, includes)`:
1. the files `git ls-files` lists (a listed file missing from the disk is skipped);
2. less those matching `.comfyignore` (gitignore syntax through `pathspec`'s "gitwildmatch"; lines stripped, blank
   lines and lines starting with `#` dropped), except under an include;
3. plus each `[tool.comfy] includes` entry of pyproject.toml, walked on disk (a file, or a folder's files whose
   paths the ignore patterns do not match), each path once.
`archive_files` below does the same, in the same order, and the archive is zipped (ZIP_DEFLATED, as comfy-cli
writes it) to measure its size.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pathspec
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT_FOLDERS = {"research", "tests", "benchmarks", "scripts", ".ci"}  # never in the archive
LEFT_OUT_NAMES = {"Makefile", "requirements-dev.txt", ".gitignore", ".comfyignore"}
PRODUCT_FOLDERS = ("nodes", "training", "web", "workflows")  # every tracked file of these ships
MUST_SHIP = [
    "__init__.py", "README.md", "pyproject.toml", "requirements.txt",
    "nodes/__init__.py", "training/grpo/trainer.py", "training/grpo/shapes_generator.py",
    "training/grpo/assets/shapes/model_index.json", "training/grpo/assets/shapes-grpo/lora.safetensors",
    "training/grpo/assets/shapes-fast/lora.safetensors",
    "training/reward/assets/shapes/spatialscore.json", "training/reward/assets/shapes-gen/spatialscore.json",
    "training/reward/assets/shapes-edit/spatialreward.json",
    "training/grpo/recipes/shapes.py", "training/reward/recipes/shapes.py", "training/reward/recipes/shapes_edit.py",
    "docs/nodes.md", "docs/grpo.md", "workflows/spatialscore_score_images.json",
]  # fmt: skip


def _tracked_files() -> list[str]:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed: the archive is built from `git ls-files`")
    done = subprocess.run([git, "-C", str(ROOT), "ls-files"], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        pytest.skip(f"not a git checkout ({done.stderr.strip()}): the archive is built from `git ls-files`")
    return [line for line in done.stdout.splitlines() if line.strip()]


def _ignore_spec() -> pathspec.PathSpec | None:
    ignore = ROOT / ".comfyignore"
    if not ignore.is_file():
        return None
    lines = ignore.read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return pathspec.PathSpec.from_lines("gitwildmatch", patterns) if patterns else None


def _includes() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["comfy"].get("includes", [])


def archive_files() -> list[str]:
    """The archive's paths, in comfy-cli's order: tracked files, less .comfyignore, plus includes."""
    spec = _ignore_spec()
    includes = [os.path.normpath(i.lstrip("/")).replace(os.sep, "/") for i in _includes()]

    def ignored(rel: str) -> bool:
        if spec is None or any(rel == i or rel.startswith(i + "/") for i in includes if i not in ("", ".")):
            return False
        return spec.match_file(rel)

    files: list[str] = []
    for rel in _tracked_files():
        if not ignored(rel) and (ROOT / rel).exists():
            files.append(rel)
    seen = set(files)
    for include in includes:
        path = ROOT / include
        if path.is_file():
            if not ignored(include) and include not in seen:
                files.append(include)
                seen.add(include)
            continue
        for folder, dirs, names in os.walk(path):
            base = Path(folder).relative_to(ROOT).as_posix()
            dirs[:] = [d for d in dirs if not ignored(f"{base}/{d}")]
            for name in names:
                rel = f"{base}/{name}"
                if rel not in seen and not ignored(rel):
                    files.append(rel)
                    seen.add(rel)
    return files


@pytest.fixture(scope="module")
def shipped() -> list[str]:
    assert (ROOT / ".comfyignore").is_file(), "without .comfyignore the archive is every tracked file"
    return archive_files()


def test_the_archive_holds_no_research_test_benchmark_script_or_run_history_file(shipped):
    wrong = [p for p in shipped if p.split("/")[0] in LEFT_OUT_FOLDERS or p in LEFT_OUT_NAMES
             or re.fullmatch(r"BENCHMARKS.*\.md", p) or p.endswith(".log")
             or (p.endswith(".jsonl") and "/prompt_sets/" not in p)  # run logs; the shipped prompt sets are data
             or "/research/" in p or "/tests/" in p]  # fmt: skip
    assert not wrong, f"left-out files in the archive: {wrong}"
    # run-history pictures: every picture of the user docs in the archive is one those docs show
    docs = "\n".join((ROOT / p).read_text(encoding="utf-8") for p in shipped if p.endswith(".md"))
    pictures = [p for p in shipped if p.startswith("docs/") and p.endswith((".png", ".jpg", ".gif"))]
    unshown = [p for p in pictures if Path(p).name not in docs]
    assert not unshown, f"pictures in docs/ that no shipped document shows: {unshown}"


def test_the_archive_holds_the_whole_pack(shipped):
    tracked = _tracked_files()
    missing = [p for p in MUST_SHIP if p not in shipped]
    if "LICENSE" in tracked:
        missing += [] if "LICENSE" in shipped else ["LICENSE"]
    product = [p for p in tracked if p.split("/")[0] in PRODUCT_FOLDERS and (ROOT / p).exists()]
    missing += [p for p in product if p not in shipped]
    assert not missing, f"product files left out of the archive: {missing}"
    user_docs = [p for p in tracked if re.fullmatch(r"docs/[^/]+\.md", p)]
    assert user_docs and all(p in shipped for p in user_docs)


def test_shipped_code_imports_nothing_left_out(shipped):
    """The pack runs from the archive alone: no shipped module imports research, tests, benchmarks or scripts."""
    wrong = []
    for rel in (p for p in shipped if p.endswith(".py")):
        tree = ast.parse((ROOT / rel).read_text(encoding="utf-8"), filename=rel)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            wrong += [f"{rel}:{node.lineno} {n}" for n in names if n.split(".")[0] in LEFT_OUT_FOLDERS]
    assert not wrong, f"shipped code imports what does not ship: {wrong}"


def test_archive_size(shipped, tmp_path):
    """Zipped as comfy-cli zips it; the goal is under 22 MB with the model assets.

    It was 20 MB with one shipped LoRA; each shipped LoRA adds about 1.9 MB zipped (float weights hardly compress),
    and with `shapes-grpo` and `shapes-fast` the archive measured 20.66 MB (329 files, 2026-12-07)."""
    archive = tmp_path / "node.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipf:
        for rel in shipped:
            zipf.write(ROOT / rel, rel)
    size = archive.stat().st_size
    raw = sum((ROOT / p).stat().st_size for p in shipped)
    print(f"registry archive: {len(shipped)} files, {size / 1e6:.2f} MB zipped ({raw / 1e6:.2f} MB unpacked)")
    assert size < 22e6
