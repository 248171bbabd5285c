"""SpatialScore's ComfyUI nodes.

`nodes.logic` holds everything that does not need ComfyUI (prompt splitting, ranking, reordering, drawing,
folder discovery, the scorer handle) and is unit-tested on its own. The modules beside it (`loader`, `score`,
`rerank`, `comfy_models`, `extension`) are thin V3 wrappers that import `comfy_api`, so they are only imported
by ComfyUI itself, through the pack's root `__init__.py`.
"""
