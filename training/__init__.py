"""Headless core of SpatialScore: dataset building, reward model training/scoring, Spatial GRPO.

Never imports ComfyUI. Each stage is a subpackage with its own config and `python -m training.<stage>`.
"""

import sys as _sys

__version__ = "0.1.0"

# `python -m training.<anything>`: Python sets sys.argv[0] to "-m" while it imports the packages of the module
# it runs (documented under the -m option), so this one check covers every command-line entry point, before a
# stage imports a dependency that is missing or too old: one line per such dependency and exit status 2.
if _sys.argv[:1] == ["-m"]:
    from .common.versions import exit_if_unmet

    exit_if_unmet()
