"""Import this pack's `training` package from inside ComfyUI without putting the pack on sys.path for good.

ComfyUI loads a pack as a package under a path-like module name, so `import training` does not find the pack's
own `training/`. The pack root goes onto sys.path only for the import; once `training` is in sys.modules, its
submodules resolve through the package itself. A different module already imported as `training` (another pack,
another project) is refused rather than silently used.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from .discovery import pack_root


def import_training(submodule: str = "reward") -> ModuleType:
    root = pack_root()
    loaded = sys.modules.get("training")
    if loaded is not None:
        origin = Path(getattr(loaded, "__file__", "") or "").resolve()
        if root not in origin.parents:
            raise ImportError(f"another module named 'training' is already imported (from {origin}); "
                              f"SpatialScore needs its own at {root / 'training'}")
        return importlib.import_module(f"training.{submodule}")
    added = str(root) not in sys.path
    if added:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"training.{submodule}")
    finally:
        if added and str(root) in sys.path:
            sys.path.remove(str(root))
