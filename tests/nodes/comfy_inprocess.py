"""Import a real ComfyUI into this test process (for unit tests of logic that runs on ComfyUI's classes).

The checkout comes from SPATIALSCORE_COMFYUI (see comfyui_harness.py); its modules must import in this python
(ComfyUI's requirements: einops, torchvision...). Typically: `.comfyui/venv/bin/python -m pytest tests/nodes/...`.
"""

from __future__ import annotations

import sys

from .comfyui_harness import find_comfyui


def import_comfy() -> str:
    """'' when comfy is importable here (on the CPU), else the reason it is not."""
    checkout, _, reason = find_comfyui()
    if checkout is None:
        return reason
    if str(checkout) not in sys.path:
        sys.path.append(str(checkout))
    try:
        import comfy.options

        comfy.options.enable_args_parsing(False)
        from comfy.cli_args import args

        args.cpu = True
        import comfy.model_management  # noqa: F401
        import comfy.sd  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means: not usable from this python
        return f"ComfyUI at {checkout} does not import in {sys.executable}: {exc!r} (run pytest with its venv)"
    return ""
