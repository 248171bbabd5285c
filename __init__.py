"""SpatialScore for ComfyUI: the pack's entry point (V3 schema).

Importing this module is cheap and cannot fail: the nodes (and through them comfy_api, torch, the scorer) are
imported only when ComfyUI calls `comfy_entrypoint`, and transformers only when a scorer is loaded. This module
must not define NODE_CLASS_MAPPINGS: ComfyUI ignores `comfy_entrypoint` in a module that does.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    try:
        from comfy_api.latest import ComfyExtension  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("SpatialScore needs a ComfyUI with the V3 node API (comfy_api.latest; tested with "
                           f"0.3.64): {exc}") from exc
    from .nodes.extension import SpatialScoreExtension, register_example_inputs, register_model_folder

    register_model_folder()
    register_example_inputs()
    try:  # the dataset review page, on ComfyUI's own server; the nodes work without it
        from .nodes.review_routes import register_review_routes

        register_review_routes()
    except Exception as exc:  # noqa: BLE001 - a broken page must not take the nodes down with it
        import logging

        logging.warning("SpatialScore: the dataset review page is not available: %s", exc)
    return SpatialScoreExtension()


__all__ = ["WEB_DIRECTORY", "comfy_entrypoint"]
