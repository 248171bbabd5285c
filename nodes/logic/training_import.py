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


def missing_dependency(exc: ModuleNotFoundError) -> ImportError:
    """A clear error for a dependency of the scorer that is not installed in ComfyUI's Python."""
    requirements = pack_root() / "requirements.txt"
    return ImportError(f"SpatialScore needs the Python package '{exc.name}', which is not installed in ComfyUI's "
                       f"environment: run `{sys.executable} -m pip install -r {requirements}` and restart ComfyUI")


def import_training(submodule: str = "reward") -> ModuleType:
    try:
        return _import_training(submodule)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "training":
            raise
        raise missing_dependency(exc) from exc


def _import_training(submodule: str) -> ModuleType:
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
