#!/usr/bin/env bash
# The browser check of the score badges (scripts/comfyui_browser.mjs badge-check) with every prerequisite made here.
#
#   scripts/comfyui_badge_check.sh [out_dir]          # default out_dir: runs/badge_check (git-ignored)
#
# Needs, and says so when one is missing:
#   - a ComfyUI made by scripts/comfyui_setup.sh (.comfyui/ComfyUI and .comfyui/venv), or SPATIALSCORE_COMFYUI
#     (+ SPATIALSCORE_COMFYUI_PYTHON) pointing at one;
#   - node >= 18 and npm (apt-get install nodejs npm);
#   - Debian's chromium (apt-get update && apt-get install chromium), or CHROMIUM=/path/to/chromium.
# Made here: playwright-core in .comfyui/node_modules (npm, once; SPATIALSCORE_NODE_MODULES points at it), and a
# fresh ComfyUI base folder with the inputs the check loads: input/candidates.png (8 frames), input/candidates.latent.
# The check scores with the built-in `shapes` scorer, so no scorer folder is needed. ComfyUI is started on
# 127.0.0.1, the check runs under a time limit (no hang when something is wrong), and ComfyUI is stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/badge_check}"
PY="${PYTHON:-.venv/bin/python}"
export SPATIALSCORE_COMFYUI="${SPATIALSCORE_COMFYUI:-$(pwd)/.comfyui/ComfyUI}"
need() { echo "badge check: $1" >&2; exit 2; }
[ -f "$SPATIALSCORE_COMFYUI/main.py" ] || need "no ComfyUI at $SPATIALSCORE_COMFYUI: run scripts/comfyui_setup.sh first"
command -v node >/dev/null || need "node is not installed (apt-get install nodejs npm)"
CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
[ -x "$CHROMIUM" ] || need "chromium is not installed (apt-get update && apt-get install chromium), or set CHROMIUM"
export CHROMIUM
MODULES="${SPATIALSCORE_NODE_MODULES:-$(pwd)/.comfyui/node_modules}"
if [ ! -d "$MODULES/playwright-core" ]; then
  command -v npm >/dev/null || need "npm is not installed (apt-get install npm), needed once for playwright-core"
  mkdir -p "$(dirname "$MODULES")"
  (cd "$(dirname "$MODULES")" && npm install --no-save --silent playwright-core >/dev/null)
fi
export SPATIALSCORE_NODE_MODULES="$MODULES"

BASE="$(mktemp -d "${TMPDIR:-/tmp}/spatialscore-badges.XXXXXX")"
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$BASE"; }
trap cleanup EXIT
mkdir -p "$BASE/input" "$OUT"
"$PY" -c "
import sys; from pathlib import Path; sys.path.insert(0, '.')
from tests.nodes.comfyui_harness import write_candidates, write_latent
write_candidates(Path('$BASE/input')); write_latent(Path('$BASE/input'))"
"$PY" scripts/comfyui_serve.py --base "$BASE" > "$BASE/serve.log" 2>&1 &
SERVER=$!
URL=""
for _ in $(seq 1 300); do  # ComfyUI answers within a few minutes on 2 CPU cores
  URL="$(grep -o 'http://127.0.0.1:[0-9]*' "$BASE/serve.log" | head -1 || true)"
  [ -n "$URL" ] && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$BASE/serve.log" >&2; need "ComfyUI did not start (log above)"; }
  sleep 1
done
[ -n "$URL" ] || need "ComfyUI did not answer within 300 s"
timeout 600 node scripts/comfyui_browser.mjs badge-check "$URL" "$OUT"
