"""The machine the report runs on, probed in a process of its own (the report's own process never holds a CUDA
context, which would take memory from the items): device, memory, driver, torch, CUDA, and whether diffusers is
importable (the GPU image has no diffusers; the Flux and Qwen-Image items need it).

    python -m benchmarks.gpu_report.device     # prints the probe as JSON
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIFFUSERS_VERSION = "0.42.1"  # the version the CPU development machine runs the test suite with
WHEEL_FOLDERS = (".", "wheels", "shared", "shared/wheels")  # where a wheel copied into the working tree is looked for


def nvidia_smi(field: str) -> str | None:
    """One field of the first visible GPU from nvidia-smi (e.g. driver_version, memory.free), or None."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip() or "0"
    try:
        out = subprocess.run([exe, f"--query-gpu={field}", "--format=csv,noheader,nounits", "-i", visible],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


def probe_here() -> dict:
    import torch

    info = {"torch": torch.__version__, "cuda_runtime": torch.version.cuda, "cuda": torch.cuda.is_available(),
            "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    if info["cuda"]:
        free, total = torch.cuda.mem_get_info()
        info.update(name=torch.cuda.get_device_name(), total_gib=total / 2**30, free_gib=free / 2**30,
                    capability=".".join(map(str, torch.cuda.get_device_capability())))
        driver = nvidia_smi("driver_version")
        if driver is None:  # no nvidia-smi: the driver's CUDA API version is what torch can tell
            try:
                v = torch._C._cuda_getDriverVersion()
                driver = f"unknown (its CUDA API {v // 1000}.{v % 1000 // 10})"
            except (AttributeError, RuntimeError):
                driver = "unknown"
        info["driver"] = driver
    else:
        info.update(name=f"CPU ({platform.machine()}, {os.cpu_count()} cores)", total_gib=None,
                    free_gib=available_ram_gib(), driver=None)
    from importlib.metadata import PackageNotFoundError, version

    for name in ("transformers", "peft", "accelerate"):  # the image has them: their versions, without importing
        try:
            info[name] = version(name)
        except PackageNotFoundError:
            info[name] = None
    try:  # a wheel installed without a dependency it needs fails only when its models are imported
        import diffusers
        from diffusers import FluxTransformer2DModel  # noqa: F401

        info["diffusers"] = diffusers.__version__
    except Exception as exc:  # noqa: BLE001 (a broken install is reported, not raised)
        info["diffusers"], info["diffusers_error"] = None, f"{type(exc).__name__}: {exc}"
    return info


def probe(hide_cuda: bool) -> dict:
    """probe_here in a fresh process (with CUDA hidden for the mini shape, which runs on the CPU)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    if hide_cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    out = subprocess.run([sys.executable, "-m", "benchmarks.gpu_report.device"], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=300)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the device probe failed (exit {out.returncode}): {last}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def available_ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def free_gib(info: dict) -> float | None:
    """Free memory now, where the items run: the GPU's (nvidia-smi; else what the probe saw) or the RAM."""
    if not info["cuda"]:
        return available_ram_gib()
    free = nvidia_smi("memory.free")
    try:
        return float(free) / 1024 if free is not None else info["free_gib"]
    except ValueError:
        return info["free_gib"]


def diffusers_missing(info: dict) -> str | None:
    """None when diffusers is importable; else why not, and how to bring it to a machine with no network."""
    if info.get("diffusers"):
        return None
    wheels = sorted(w for folder in WHEEL_FOLDERS for w in (ROOT / folder).glob("diffusers-*.whl"))
    wheel = wheels[-1].relative_to(ROOT) if wheels else f"wheels/diffusers-{DIFFUSERS_VERSION}-py3-none-any.whl"
    fetch = ("" if wheels else f"on a machine with PyPI, `pip download --no-deps diffusers=={DIFFUSERS_VERSION} "
                                f"-d wheels/`, copy wheels/ into the working tree, then ")
    return (f"diffusers is not importable ({info.get('diffusers_error', 'missing')}); to bring it: {fetch}"
            f"`python -m pip install --no-deps {wheel}`")


def diffusers_line(info: dict) -> str:
    """The preflight line for diffusers."""
    missing = diffusers_missing(info)
    return f"diffusers {info['diffusers']}: importable" if missing is None else \
        f"{missing}. Until then grpo-flux-dev and grpo-qwen-image are skipped."


def describe(info: dict) -> str:
    """The device as the report's header names it."""
    if not info["cuda"]:
        return f"{info['name']}, torch {info['torch']}, no CUDA"
    return (f"{info['name']}, {info['total_gib']:.1f} GiB ({info['free_gib']:.1f} free at start), driver "
            f"{info['driver']}, torch {info['torch']}, CUDA {info['cuda_runtime']}")


if __name__ == "__main__":
    print(json.dumps(probe_here()))
