"""SpatialScore's ComfyUI nodes.

One module per node family, each a thin V3 wrapper that imports `comfy_api`: `loader` (SpatialScore Loader),
`score` (Score Images), `rerank` (Rerank), `edit` (Edit Loader, Edit Score, Edit Rerank), `shapes_loader` (Shapes
Generator Loader), `grpo` (GRPO Train), `bestofn` (Best-of-N Sampler), `evaluate` (Evaluate); `extension` lists
them for ComfyUI, `common` holds the inputs and UI payload they share, `socket_types` the pack's socket type and
`review_routes` the dataset review page's routes. They are only imported by ComfyUI itself, through the pack's root
`__init__.py`.

Beside them: `nodes.logic` holds everything that does not need ComfyUI (prompt splitting, ranking, drawing, folder
discovery, the scorer handle, each node's settings and checks, the widget tables) and is unit-tested on its own;
`nodes.comfy` holds what runs on ComfyUI's own classes without being a node (the GRPO policy over the user's model,
segmented sampling, the shapes generator's loading, the scorer's placement).
"""
