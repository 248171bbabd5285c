"""Shared fixtures: tiny models of the real architectures, built offline once per test session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# `make test-integration` sets this: a test that would skip for a missing part (ComfyUI, Chromium, node,
# playwright-core) fails instead, with the reason, so that a run that lacks a part cannot pass.
REQUIRE_REAL = os.environ.get("SPATIALSCORE_REQUIRE_REAL") == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "real_parts: needs a real ComfyUI, Chromium, node or playwright-core; "
                                       "`make test-integration` runs these with every part installed, 0 skipped")


def _required(report, what: str) -> None:
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"SPATIALSCORE_REQUIRE_REAL=1: {what} was skipped, but a missing part fails this run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_REAL and report.skipped and not hasattr(report, "wasxfail"):
        _required(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_REAL and report.skipped:
        _required(report, collector.nodeid)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A tiny random Qwen2.5-VL checkpoint folder (zero-shot scorable, LoRA-trainable)."""
    from training.reward.models.tiny import save_tiny_qwen25vl

    return save_tiny_qwen25vl(tmp_path_factory.mktemp("tiny-base") / "qwen", seed=0)


@pytest.fixture(scope="session")
def tiny_scorer_full(tmp_path_factory):
    """A tiny scorer folder with full weights and a random head."""
    from training.reward.models.tiny import save_tiny_scorer

    return save_tiny_scorer(tmp_path_factory.mktemp("tiny-scorer") / "full", seed=1)
