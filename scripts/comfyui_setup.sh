#!/usr/bin/env bash
# Set up a local ComfyUI 0.3.64 with a venv of its own, for the tests that need a real ComfyUI
# (`make test-integration` runs this first; it is idempotent: a second run checks and returns in seconds).
#
#   scripts/comfyui_setup.sh [dest]                  # ComfyUI from ../shared/vendor/comfyui-0.3.64-a125cd84.tar.gz
#   COMFYUI_SRC=<git URL or local clone of Comfy-Org/ComfyUI> scripts/comfyui_setup.sh [dest]
#
# dest defaults to .comfyui/ (git-ignored): dest/ComfyUI is the source tree, dest/venv its own virtual environment.
# COMFYUI_TARBALL names another copy of the vendored tarball (default: ../shared/vendor/ beside this checkout).
#
# torch: ComfyUI imports torchvision (comfy/ldm/cosmos, cascade, ace via model_base), so it needs a torch and a
# torchvision that import together, and the package registries have no CPU pair: the CPU torch 2.13.0+cpu on this
# machine's disk has no torchvision (every torchvision on PyPI is a CUDA build whose _C.so links libtorch_cuda.so:
# "operator torchvision::nms does not exist"), and PyTorch's own CPU wheel index is not reachable here. So
# ComfyUI's venv gets the CUDA pair torch 2.14.1 + torchvision 0.29.1 (both cu130; PyPI, served from local
# disk on these machines), which runs on a CPU with `--cpu`. Measured on a 2-core machine (see README):
#   - lean (the default without a GPU): only the nvidia-* wheels that `import torch` loads (libtorch_cuda.so's
#     NEEDED list: cudart, cublas, cudnn, cufft, cufile, curand, cusparse + nvjitlink, nvrtc, cusparselt, nccl,
#     nvshmem). Left out: triton (0.9 GB, torch.compile only), cusolver, cupti, nvtx and the cuda-toolkit /
#     cuda-bindings / cuda-pathfinder wrappers, which torch loads lazily on a GPU. The venv is 4.3 GB;
#   - full (TORCH_CUDA=1, or on a machine where nvidia-smi runs): every dependency torch declares, 5.5 GB.
# An older pair is not lighter: every torch on PyPI for Linux x86_64 is a CUDA build with its nvidia wheels, and
# none but 2.14.1 lies on local disk (the others download several GB). TORCH_INDEX_URL=<a CPU wheel index that
# has the pair> installs CPU builds instead (a few hundred MB), where such an index can be reached.
# torchaudio: left out. PyPI has none for torch 2.14 (its newest, 2.11.1, requires torch 2.11), so ComfyUI logs
# IMPORT FAILED for its own audio nodes (comfy_extras/nodes_audio.py and the nodes importing it). That is expected
# and touches nothing of this pack; the integration test checks this pack's own import line. With an index that
# has a matching torchaudio, set TORCHAUDIO=torchaudio==<version> to install it too.
# Nothing of ComfyUI is committed; the pack is not installed into the checkout (the tests symlink it into a
# temporary --base-directory).
set -euo pipefail
cd "$(dirname "$0")/.."
PACK="$(pwd)"
DEST="${1:-.comfyui}"
REF="${COMFYUI_REF:-a125cd84b054a57729b5eecab930ca9408719832}"  # ComfyUI 0.3.64, the version tested
TARBALL="${COMFYUI_TARBALL:-$PACK/../shared/vendor/comfyui-0.3.64-a125cd84.tar.gz}"
PY="${PYTHON:-python3}"
TORCH_PAIR=("torch==2.14.1" "torchvision==0.29.1" ${TORCHAUDIO:+"$TORCHAUDIO"})
# torch's declared dependencies that a CPU run never loads (see above)
LEAVE_OUT="triton cuda-toolkit cuda-bindings cuda-pathfinder nvidia-cusolver nvidia-cuda-cupti nvidia-nvtx"

die() { echo "error: $*" >&2; exit 2; }

mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
if [ ! -f "$DEST/ComfyUI/main.py" ]; then
  if [ -n "${COMFYUI_SRC:-}" ]; then
    git clone --no-checkout -q "$COMFYUI_SRC" "$DEST/ComfyUI"
    # check out every file whose content is present (a partial mirror may lack a large tokenizer file that the
    # integration test never uses)
    (cd "$DEST/ComfyUI" && git ls-tree -r "$REF" | while read -r _ _ sha path; do
       git cat-file -e "$sha" 2>/dev/null && printf '%s\0' "$path"; done | xargs -0 git checkout "$REF" --)
  elif [ -f "$TARBALL" ]; then
    echo "unpacking ComfyUI from $TARBALL ..."
    rm -rf "$DEST/ComfyUI" "$DEST/.unpack"
    mkdir -p "$DEST/.unpack"
    tar xzf "$TARBALL" -C "$DEST/.unpack"
    [ -f "$DEST/.unpack/ComfyUI/main.py" ] || die "$TARBALL does not hold ComfyUI/main.py"
    mv "$DEST/.unpack/ComfyUI" "$DEST/ComfyUI" && rmdir "$DEST/.unpack"
  else
    die "no ComfyUI source: $TARBALL is missing (CI lays shared/ beside the clone). Set COMFYUI_TARBALL to the" \
        "vendored comfyui-0.3.64-a125cd84.tar.gz, or COMFYUI_SRC to a git URL or a local clone of Comfy-Org/ComfyUI."
  fi
fi
if [ ! -x "$DEST/venv/bin/python" ]; then
  "$PY" -m venv "$DEST/venv"
fi
VPY="$DEST/venv/bin/python"
grep -v -E '^(torch|torchvision|torchaudio)([<>=~ ].*)?$' "$DEST/ComfyUI/requirements.txt" > "$DEST/comfyui-requirements.txt"
# pytest too: the in-process tests (tests/nodes/test_comfy_policy.py) import ComfyUI, so they run in this venv
REQS=(-r "$DEST/comfyui-requirements.txt" -r "$PACK/requirements.txt" pytest)

FULL=0
if [ "${TORCH_CUDA:-0}" = 1 ] || { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
  FULL=1
fi
STAMP="$DEST/venv/.spatialscore-setup"
WANT="$(cat "$DEST/comfyui-requirements.txt" "$PACK/requirements.txt"; echo "${TORCH_PAIR[*]} full=$FULL" \
        "index=${TORCH_INDEX_URL:-} leave_out=$LEAVE_OUT")"
pair_ok() { "$VPY" -c "import torch, torchvision; from torchvision.ops import nms" 2>/dev/null; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && pair_ok; then
  echo "ComfyUI venv up to date ($DEST/venv)"
else
  rm -f "$STAMP"
  START=$SECONDS
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    echo "installing ${TORCH_PAIR[*]} (CPU builds) from $TORCH_INDEX_URL ..."
    "$VPY" -m pip install -q --timeout 30 --retries 1 --index-url "$TORCH_INDEX_URL" "${TORCH_PAIR[@]}" ||
      die "no torch/torchvision pair could be installed from TORCH_INDEX_URL=$TORCH_INDEX_URL (it must have" \
          "${TORCH_PAIR[*]} as CPU builds); unset it to install the CUDA builds from the package registries."
    "$VPY" -m pip install -q "${REQS[@]}" || die "ComfyUI's or the pack's requirements did not install (above)"
  elif [ "$FULL" = 1 ]; then
    echo "installing ${TORCH_PAIR[*]} (CUDA builds, all of torch's dependencies, about 5.5 GB) and the requirements ..."
    "$VPY" -m pip install -q "${TORCH_PAIR[@]}" "${REQS[@]}" ||
      die "could not install ${TORCH_PAIR[*]} and ComfyUI's requirements from the package registries (above)"
  else
    echo "installing ${TORCH_PAIR[*]} (CUDA builds, without the GPU-only wheels: about 4.3 GB) and the requirements ..."
    # resolve everything once (about a minute), then install the resolved files less LEAVE_OUT, with --no-deps so
    # that pip does not add them back
    "$VPY" -m pip install -q --dry-run --report "$DEST/resolved.json" "${TORCH_PAIR[@]}" "${REQS[@]}" ||
      die "could not resolve ${TORCH_PAIR[*]} and ComfyUI's requirements from the package registries (above)"
    "$VPY" - "$DEST/resolved.json" "$LEAVE_OUT" > "$DEST/install.txt" <<'EOF'
import json, re, sys
leave = set(sys.argv[2].split())
for item in json.load(open(sys.argv[1]))["install"]:
    meta, info = item["metadata"], item.get("download_info") or {}
    if re.sub(r"[-_.]+", "-", meta["name"]).lower() in leave:
        continue
    url, sha = info.get("url"), (info.get("archive_info") or {}).get("hashes", {}).get("sha256")
    # the file the resolver chose (no second look-up in the indexes), else the pinned name
    print(f"{url}#sha256={sha}" if url and sha and "#" not in url else url or f"{meta['name']}=={meta['version']}")
EOF
    "$VPY" -m pip install -q --no-deps -r "$DEST/install.txt" ||
      die "could not install the resolved packages ($DEST/install.txt) from the package registries (above)"
  fi
  pair_ok || die "torch and torchvision do not import together in $DEST/venv"
  echo "installed in $((SECONDS - START)) s; $DEST/venv is $(du -sh "$DEST/venv" | cut -f1)"
fi
# ComfyUI itself must import on this torch (a torchvision that does not load would fail here, not in a test)
(cd "$DEST/ComfyUI" && "$VPY" -c "
import comfy.options; comfy.options.enable_args_parsing(False)
from comfy.cli_args import args; args.cpu = True
import comfy.model_management, comfy.sd, comfy.model_base" >/dev/null 2>"$DEST/import-check.log") ||
  die "ComfyUI does not import in $DEST/venv: $(tail -n 3 "$DEST/import-check.log")"
echo "$WANT" > "$STAMP"
VERSION="$("$VPY" -c "import runpy; print(runpy.run_path('$DEST/ComfyUI/comfyui_version.py')['__version__'])")"
echo "ComfyUI $VERSION ready. Run the tests that need real parts with: make test-integration"
echo "or by hand:"
echo "  export SPATIALSCORE_COMFYUI=$(cd "$DEST/ComfyUI" && pwd) SPATIALSCORE_COMFYUI_PYTHON=$(cd "$DEST/venv/bin" && pwd)/python"
echo "  \$SPATIALSCORE_COMFYUI_PYTHON -m pytest -m real_parts"
