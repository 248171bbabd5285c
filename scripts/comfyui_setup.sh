#!/usr/bin/env bash
# Set up a local ComfyUI for the integration test (tests/nodes/test_comfyui_integration.py) and the browser check.
#
#   COMFYUI_SRC=<git URL or local clone of Comfy-Org/ComfyUI> scripts/comfyui_setup.sh [dest]
#
# dest defaults to .comfyui/ (git-ignored): dest/ComfyUI is the checkout, dest/venv its own virtual environment.
# ComfyUI's requirements pull torchvision, which does not import beside the repo venv's CPU torch, so ComfyUI gets
# a venv of its own: torch 2.14.1 + torchvision 0.29.1 (wheels on this machine's disk, CUDA build that runs on the
# CPU), then ComfyUI's requirements without torch/torchvision/torchaudio, then this pack's requirements.txt.
# Nothing of ComfyUI is committed; the pack is not installed into the checkout (the test symlinks it into a
# temporary --base-directory).
set -euo pipefail
cd "$(dirname "$0")/.."
PACK="$(pwd)"
DEST="${1:-.comfyui}"
REF="${COMFYUI_REF:-a125cd84b054a57729b5eecab930ca9408719832}"  # ComfyUI 0.3.64, the version tested
PY="${PYTHON:-python3}"

mkdir -p "$DEST"
if [ ! -f "$DEST/ComfyUI/main.py" ]; then
  : "${COMFYUI_SRC:?set COMFYUI_SRC to a git URL or a local clone of Comfy-Org/ComfyUI}"
  git clone --no-checkout -q "$COMFYUI_SRC" "$DEST/ComfyUI"
  # check out every file whose content is present (a partial mirror may lack a large tokenizer file that the
  # integration test never uses)
  (cd "$DEST/ComfyUI" && git ls-tree -r "$REF" | while read -r _ _ sha path; do
     git cat-file -e "$sha" 2>/dev/null && printf '%s\0' "$path"; done | xargs -0 git checkout "$REF" --)
fi
if [ ! -x "$DEST/venv/bin/python" ]; then
  "$PY" -m venv "$DEST/venv"
fi
VPY="$DEST/venv/bin/python"
"$VPY" -c "import torch, torchvision" 2>/dev/null || "$VPY" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
grep -v -E '^(torch|torchvision|torchaudio)([<>=~ ].*)?$' "$DEST/ComfyUI/requirements.txt" > "$DEST/comfyui-requirements.txt"
"$VPY" -m pip install -q -r "$DEST/comfyui-requirements.txt" -r "$PACK/requirements.txt"
VERSION="$("$VPY" -c "import runpy; print(runpy.run_path('$DEST/ComfyUI/comfyui_version.py')['__version__'])")"
echo "ComfyUI $VERSION ready. Run the integration test with:"
echo "  export SPATIALSCORE_COMFYUI=$(cd "$DEST/ComfyUI" && pwd) SPATIALSCORE_COMFYUI_PYTHON=$(cd "$DEST/venv/bin" && pwd)/python"
echo "  .venv/bin/python -m pytest tests/nodes/test_comfyui_integration.py -v"
