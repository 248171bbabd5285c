"""Shared helpers for the dataset tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from training.dataset.build import build
from training.dataset.config import BuildConfig


def shapes_config(out: Path, **kw) -> BuildConfig:
    kw.setdefault("pairs", 40)
    kw.setdefault("seed", 3)
    kw.setdefault("chunk_pairs", 16)
    kw.setdefault("progress", False)
    return BuildConfig(out=out, world="shapes", **kw)


def quiet_build(cfg: BuildConfig, load_scorer=None) -> dict:
    logs: list[str] = []
    summary = build(cfg, log=logs.append, load_scorer=load_scorer)
    summary["logs"] = logs
    return summary


def snapshot(out: Path) -> dict:
    """Everything a build leaves behind that matters: manifest bytes, ledger bytes, every file's hash."""
    files = {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".lock"}
    return {"manifest": (out / "manifest.jsonl").read_bytes(), "files": files}
