"""Start the local test ComfyUI (with this pack) and keep it running until Ctrl-C: for the browser check and
for trying the example workflows by hand.

    SPATIALSCORE_COMFYUI=.comfyui/ComfyUI python scripts/comfyui_serve.py --base /tmp/cbase [--extra-model-paths F]

Prints the URL (127.0.0.1 only) once /system_stats answers.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.nodes.comfyui_harness import ComfyServer, comfyui_version, find_comfyui  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="base directory (models, input, output, ...)")
    parser.add_argument("--extra-model-paths", type=Path, default=None, help="an extra_model_paths.yaml")
    args = parser.parse_args()
    checkout, python, reason = find_comfyui()
    if checkout is None:
        print(reason, file=sys.stderr)
        return 2
    with ComfyServer(checkout, python, args.base.resolve(), args.extra_model_paths) as server:
        print(f"ComfyUI {comfyui_version(checkout)} at {server.url} (log: {server.log_path})", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while server.proc.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
