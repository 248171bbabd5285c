#!/usr/bin/env bash
# The tests that import the dependencies, run on exactly the floors of requirements.txt (requirements-min.txt), in
# a venv of their own: the versions the pack declares are tested ones.
#
#   scripts/test_floors.sh                 # builds .venv-floors once (again when a requirements file changes)
#   scripts/test_floors.sh -x -k scorer    # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${FLOORS_VENV:-.venv-floors}
# The CPU wheel that lies on the CI machines' disk. The torch floor (TORCH_FLOOR in training/common/versions.py,
# 2.11) exists on PyPI only as a CUDA build of several GB: TORCH_SPEC=torch==2.11.0 runs on it where that fits.
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
TESTS=(tests/reward tests/grpo tests/dataset tests/nodes tests/common tests/bestofn)

stamp="$VENV/.installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "$TORCH_SPEC" ] || [ requirements-min.txt -nt "$stamp" ] ||
        [ requirements-dev.txt -nt "$stamp" ]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    # torch first: a requirement that admits a newer torch would otherwise pull a CUDA build of several GB
    "$VENV/bin/python" -m pip install -q "$TORCH_SPEC"
    "$VENV/bin/python" -m pip install -q -r requirements-min.txt -r requirements-dev.txt
    echo "$TORCH_SPEC" > "$stamp"
fi
# pip keeps the pins, but say so if anything else moved them: the run must be on the floors
"$VENV/bin/python" - <<'EOF'
import sys
from importlib import metadata

from training.common.versions import read_floors, release

moved = {n: metadata.version(n) for n, v in read_floors().items() if release(metadata.version(n)) != release(v)}
if moved:
    sys.exit(f"not on the floors: {moved}")
EOF
# as `make test` in CI: the real_parts tests (a real ComfyUI, a browser) belong to `make test-integration`
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
    -m "not benchmark and not real_parts" "${TESTS[@]}" "$@"
