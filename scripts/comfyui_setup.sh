#!/usr/bin/env bash
# Set up a local ComfyUI for the integration test (tests/nodes/test_comfyui_integration.py) and the browser check.
#
#   COMFYUI_SRC=<git URL or local clone of Comfy-Org/ComfyUI> scripts/comfyui_setup.sh [dest]
#
# dest defaults to .comfyui/ (git-ignored): dest/ComfyUI is the checkout, dest/venv its own virtual environment.
# ComfyUI needs a torchvision that imports beside its torch, and the repo venv's CPU torch has none (the PyPI
# torchvision wheels are CUDA builds: "torchvision::nms does not exist"), so ComfyUI gets a venv of its own with a
# matched pair, torch 2.14.1 + torchvision 0.29.1, found in this order:
#   1. already installed in dest/venv and importing together: kept;
#   2. CPU builds from PyTorch's CPU wheel index (TORCH_INDEX_URL, default below; a few hundred MB, no CUDA);
#   3. only with TORCH_CUDA=1 (or on a machine with an NVIDIA GPU): the CUDA builds from PyPI, which pull the
#      nvidia-* wheels, several GB. A CUDA torch does not even import without them (libcudnn), so there is no
#      smaller CUDA install; a CPU test run is refused this download unless asked for.
# torchaudio: left out. PyPI has none for torch 2.14 (its newest, 2.11.1, requires torch 2.11), so ComfyUI logs
# IMPORT FAILED for its own audio nodes (comfy_extras/nodes_audio.py and the nodes importing it). That is expected
# and touches nothing of this pack; the integration test checks this pack's own import line. With an index that has
# a matching torchaudio, set TORCHAUDIO=torchaudio==<version> to install it too.
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
TORCH_PAIR=("torch==2.14.1" "torchvision==0.29.1" ${TORCHAUDIO:+"$TORCHAUDIO"})
CPU_INDEX="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
pair_ok() { "$VPY" -c "import torch, torchvision; from torchvision.ops import nms" 2>/dev/null; }
if ! pair_ok; then
  echo "installing ${TORCH_PAIR[*]} (CPU builds) from $CPU_INDEX ..."
  if ! "$VPY" -m pip install -q --timeout 30 --retries 1 --index-url "$CPU_INDEX" "${TORCH_PAIR[@]}"; then
    if [ "${TORCH_CUDA:-0}" = 1 ] || command -v nvidia-smi >/dev/null 2>&1; then
      echo "no CPU wheels from $CPU_INDEX; installing the CUDA builds from PyPI (with nvidia-* wheels, several GB)"
      "$VPY" -m pip install -q "${TORCH_PAIR[@]}"
    else
      echo "error: no CPU torch/torchvision pair could be installed from $CPU_INDEX. Set TORCH_INDEX_URL to an index" \
           "that has ${TORCH_PAIR[*]} as CPU builds, or TORCH_CUDA=1 to install the CUDA builds from PyPI (several GB" \
           "of nvidia-* wheels, which a CPU test run does not use)." >&2
      exit 2
    fi
  fi
  pair_ok || { echo "error: torch and torchvision do not import together in $DEST/venv" >&2; exit 1; }
fi
grep -v -E '^(torch|torchvision|torchaudio)([<>=~ ].*)?$' "$DEST/ComfyUI/requirements.txt" > "$DEST/comfyui-requirements.txt"
# pytest too: the in-process tests (tests/nodes/test_comfy_policy.py) import ComfyUI, so they run in this venv
"$VPY" -m pip install -q -r "$DEST/comfyui-requirements.txt" -r "$PACK/requirements.txt" pytest
VERSION="$("$VPY" -c "import runpy; print(runpy.run_path('$DEST/ComfyUI/comfyui_version.py')['__version__'])")"
echo "ComfyUI $VERSION ready. Run the integration test with:"
echo "  export SPATIALSCORE_COMFYUI=$(cd "$DEST/ComfyUI" && pwd) SPATIALSCORE_COMFYUI_PYTHON=$(cd "$DEST/venv/bin" && pwd)/python"
echo "  .venv/bin/python -m pytest tests/nodes/test_comfyui_integration.py -v"
echo "and the tests that import ComfyUI in process with its venv:"
echo "  $(cd "$DEST/venv/bin" && pwd)/python -m pytest tests/nodes/test_comfy_policy.py -v"
