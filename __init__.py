"""SpatialScore for ComfyUI: the pack's entry point (V3 schema).

Importing this module is cheap and cannot fail: the nodes (and through them comfy_api, torch, the scorer) are
imported only when ComfyUI calls `comfy_entrypoint`, and transformers only when a scorer is loaded. This module
must not define NODE_CLASS_MAPPINGS: ComfyUI ignores `comfy_entrypoint` in a module that does.

The installed versions of the dependencies are checked here from package metadata alone (nothing is imported):
with one missing or older than the floor it is tested with, the pack registers no nodes and logs one line per
such dependency with the pip command that fixes it, instead of an IMPORT FAILED and a traceback.
"""

import importlib.util
import logging
from pathlib import Path


def _unmet_requirements() -> list[str]:
    """training/common/versions.py loaded by its path: pytest imports this file without a parent package when the
    clone's folder name is no identifier (comfyui-spatialscore), where a relative import would fail."""
    path = Path(__file__).resolve().parent / "training" / "common" / "versions.py"
    spec = importlib.util.spec_from_file_location("spatialscore_versions", path)
    versions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(versions)
    return versions.unmet_requirements()


UNMET_REQUIREMENTS = _unmet_requirements()
# The web extension talks to the nodes and routes; with neither registered it stays out of the page too.
WEB_DIRECTORY = None if UNMET_REQUIREMENTS else "./web"


async def comfy_entrypoint():
    try:
        from comfy_api.latest import ComfyExtension  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("SpatialScore needs a ComfyUI with the V3 node API (comfy_api.latest; tested with "
                           f"0.3.64): {exc}") from exc
    if UNMET_REQUIREMENTS:
        for line in UNMET_REQUIREMENTS:
            logging.error("SpatialScore registers no nodes: %s, then restart ComfyUI", line)
        return _no_nodes()
    from .nodes.extension import SpatialScoreExtension, register_example_inputs, register_model_folder

    register_model_folder()
    register_example_inputs()
    try:  # the dataset review page, on ComfyUI's own server; the nodes work without it
        from .nodes.review_routes import register_review_routes

        register_review_routes()
    except Exception as exc:  # noqa: BLE001 - a broken page must not take the nodes down with it
        logging.warning("SpatialScore: the dataset review page is not available: %s", exc)
    return SpatialScoreExtension()


def _no_nodes():
    """An extension with no nodes: ComfyUI loads the pack without IMPORT FAILED, and nothing of it runs."""
    from comfy_api.latest import ComfyExtension

    class SpatialScoreDisabled(ComfyExtension):
        async def get_node_list(self) -> list:
            return []

    return SpatialScoreDisabled()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
