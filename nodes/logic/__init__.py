"""Node logic with no ComfyUI import: testable with plain torch, numpy and PIL (tests/test_layers.py checks that no
module here imports `comfy`, `comfy_api`, `folder_paths` or nodes/comfy/). What runs on ComfyUI's own classes is in
../comfy/.
"""
