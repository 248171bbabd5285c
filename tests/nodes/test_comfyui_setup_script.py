"""scripts/comfyui_setup.sh never pulls the CUDA torch and its nvidia wheels for a CPU test run unless asked
(issue 12). A stand-in venv python records every pip call; no network is used."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/calls.log"
case "$*" in
  "-c "*) [ -f "$(dirname "$0")/pair_ok" ] && exit 0; exit 1 ;;   # the torch/torchvision import check
  *"--index-url"*) exit 1 ;;                                       # the CPU index is unreachable here
  *"-m pip install"*) [ -n "$PAIR_OK_AFTER_PYPI" ] && touch "$(dirname "$0")/pair_ok"; exit 0 ;;
esac
"""


def _dest(tmp_path: Path) -> Path:
    dest = tmp_path / "dest"
    checkout = dest / "ComfyUI"
    checkout.mkdir(parents=True)
    (checkout / "main.py").write_text("")
    (checkout / "requirements.txt").write_text("torch\ntorchvision\ntorchaudio\naiohttp\n")
    (checkout / "comfyui_version.py").write_text('__version__ = "0.3.64"\n')
    python = dest / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return dest


def _run(dest: Path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("TORCH_CUDA", "TORCH_INDEX_URL")}
    path = ":".join(p for p in clean["PATH"].split(":") if not (Path(p) / "nvidia-smi").exists())  # no GPU here
    return subprocess.run(["bash", str(ROOT / "scripts" / "comfyui_setup.sh"), str(dest)], capture_output=True,
                          text=True, timeout=120, env={**clean, "PATH": path, **env})


def test_a_cpu_run_without_a_cpu_index_stops_instead_of_downloading_cuda(tmp_path):
    dest = _dest(tmp_path)
    out = _run(dest, TORCH_INDEX_URL="file:///nowhere")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "TORCH_CUDA=1" in out.stderr and "nvidia" in out.stderr
    calls = (dest / "venv" / "bin" / "calls.log").read_text().splitlines()
    installs = [c for c in calls if "pip install" in c]
    assert installs and all("--index-url file:///nowhere" in c for c in installs), calls  # never PyPI's CUDA torch


def test_cuda_builds_only_when_asked_and_torchaudio_is_not_required(tmp_path):
    dest = _dest(tmp_path)
    out = _run(dest, TORCH_INDEX_URL="file:///nowhere", TORCH_CUDA="1", PAIR_OK_AFTER_PYPI="1")
    assert out.returncode == 0, out.stdout + out.stderr
    calls = (dest / "venv" / "bin" / "calls.log").read_text().splitlines()
    assert any(c.endswith("pip install -q torch==2.14.1 torchvision==0.29.1") for c in calls), calls
    requirements = (dest / "comfyui-requirements.txt").read_text().split()
    assert requirements == ["aiohttp"]  # ComfyUI's torch, torchvision and torchaudio lines are left to the above
