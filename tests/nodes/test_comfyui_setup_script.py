"""scripts/comfyui_setup.sh: ComfyUI from the vendored tarball when no git source is given; the CUDA torch pair
without the wheels a CPU run never loads (triton, cusolver, ...) unless asked; a clear line and exit 2 for a part
that cannot be had. A stand-in venv python records every pip call; no network is used."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

FAKE_PYTHON = """#!/usr/bin/env bash
here="$(dirname "$0")"
echo "$*" >> "$here/calls.log"
case "$*" in
  "- "*) exec python3 "$@" ;;                                      # the resolved-set filter
  "-c "*) [ -f "$here/pair_ok" ] && exit 0; exit 1 ;;              # the torch/torchvision/ComfyUI import checks
  *"--index-url"*) exit 1 ;;                                       # a CPU index that cannot be reached
  *"--report"*)
    while [ $# -gt 0 ]; do [ "$1" = --report ] && report="$2"; shift; done
    printf '%s' "$FAKE_REPORT" > "$report"; exit 0 ;;
  *"-m pip install"*) touch "$here/pair_ok"; exit 0 ;;
esac
"""
RESOLVED = ["torch==2.14.1", "torchvision==0.29.1", "triton==3.8.0", "nvidia-cudnn-cu13==9.24.0.43",
            "nvidia_cusolver==12.0.4.66", "cuda-toolkit==13.0.3.0", "aiohttp==3.14.5"]
TORCH_WHEEL = "file:///opt/pypi-more/files/torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl"


def _item(pin: str) -> dict:
    name, version = pin.split("==")
    item = {"metadata": {"name": name, "version": version}}
    if name == "torch":  # the resolver's chosen file: installed as it is, with its hash
        item["download_info"] = {"url": TORCH_WHEEL, "archive_info": {"hashes": {"sha256": "ab12"}}}
    return item


def _dest(tmp_path: Path, with_checkout: bool = True) -> Path:
    dest = tmp_path / "dest"
    if with_checkout:
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
    clean = {k: v for k, v in os.environ.items() if k not in ("TORCH_CUDA", "TORCH_INDEX_URL", "COMFYUI_SRC")}
    path = ":".join(p for p in clean["PATH"].split(":") if not (Path(p) / "nvidia-smi").exists())  # no GPU here
    report = {"install": [_item(pin) for pin in RESOLVED]}
    return subprocess.run(["bash", str(ROOT / "scripts" / "comfyui_setup.sh"), str(dest)], capture_output=True,
                          text=True, timeout=120,
                          env={**clean, "PATH": path, "FAKE_REPORT": json.dumps(report), **env})


def _installs(dest: Path) -> list[str]:
    return [c for c in (dest / "venv" / "bin" / "calls.log").read_text().splitlines() if "pip install" in c]


def test_default_installs_the_cuda_pair_without_the_gpu_only_wheels(tmp_path):
    dest = _dest(tmp_path)
    out = _run(dest)
    assert out.returncode == 0, out.stdout + out.stderr
    resolve, install = _installs(dest)
    assert "--dry-run --report" in resolve and "torch==2.14.1 torchvision==0.29.1" in resolve
    assert install.endswith(f"pip install -q --no-deps -r {dest}/install.txt")
    assert (dest / "install.txt").read_text().split() == [f"{TORCH_WHEEL}#sha256=ab12", "torchvision==0.29.1",
                                                          "nvidia-cudnn-cu13==9.24.0.43", "aiohttp==3.14.5"]
    assert (dest / "comfyui-requirements.txt").read_text().split() == ["aiohttp"]  # torch lines left to the above
    again = _run(dest)  # idempotent: nothing installed a second time
    assert again.returncode == 0 and "up to date" in again.stdout and len(_installs(dest)) == 2


def test_torch_cuda_installs_every_dependency(tmp_path):
    dest = _dest(tmp_path)
    out = _run(dest, TORCH_CUDA="1")
    assert out.returncode == 0, out.stdout + out.stderr
    (install,) = _installs(dest)
    assert "--no-deps" not in install and "--dry-run" not in install and "torch==2.14.1 torchvision==0.29.1" in install


def test_an_unreachable_cpu_index_stops_with_a_clear_line_and_never_falls_back(tmp_path):
    dest = _dest(tmp_path)
    out = _run(dest, TORCH_INDEX_URL="file:///nowhere")
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.startswith("error: ") and "TORCH_INDEX_URL=file:///nowhere" in out.stderr
    assert all("--index-url file:///nowhere" in c for c in _installs(dest))


def test_comfyui_comes_from_the_vendored_tarball(tmp_path):
    dest = _dest(tmp_path, with_checkout=False)
    tarball = tmp_path / "comfyui.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, text in [("ComfyUI/main.py", ""), ("ComfyUI/requirements.txt", "torch\naiohttp\n"),
                           ("ComfyUI/comfyui_version.py", '__version__ = "0.3.64"\n')]:
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    out = _run(dest, COMFYUI_TARBALL=str(tarball))
    assert out.returncode == 0, out.stdout + out.stderr
    assert (dest / "ComfyUI" / "main.py").is_file() and not (dest / ".unpack").exists()


def test_no_source_at_all_is_one_clear_line(tmp_path):
    dest = _dest(tmp_path, with_checkout=False)
    out = _run(dest, COMFYUI_TARBALL=str(tmp_path / "missing.tar.gz"))
    assert out.returncode == 2
    assert out.stderr.startswith("error: no ComfyUI source") and "COMFYUI_SRC" in out.stderr
