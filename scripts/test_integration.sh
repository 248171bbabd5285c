#!/usr/bin/env bash
# `make test-integration`: install the real parts the tests marked `real_parts` need, then run those tests with
# them, 0 skipped. Idempotent: what is already there is checked and kept.
#
#   - ComfyUI 0.3.64 with its own venv in .comfyui/ (scripts/comfyui_setup.sh: the vendored tarball, the CUDA
#     torch 2.14.1 + torchvision 0.29.1 pair without its GPU-only wheels, ComfyUI's and the pack's requirements);
#   - Chromium (Debian's `chromium`: apt-get, when it is missing and this runs as root);
#   - playwright-core (npm, into the git-ignored .venv-node/).
# The tests run with ComfyUI's venv python (the in-process tests import ComfyUI; the server tests start it on
# 127.0.0.1; the browser tests drive Chromium) and SPATIALSCORE_REQUIRE_REAL=1, which turns a skip into a failure.
# A part that cannot be had stops the run with one `error:` line and exit 2. Each part's time is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
PLAYWRIGHT_CORE_VERSION="${PLAYWRIGHT_CORE_VERSION:-1.65.2}"
JUNIT="${SPATIALSCORE_INTEGRATION_JUNIT:-$ROOT/.comfyui/integration.xml}"
TIMES=()
die() { echo "error: $*" >&2; exit 2; }
timed() {  # timed LABEL COMMAND...: runs it and records how long it took
  local label="$1" start=$SECONDS rc=0
  shift
  "$@" || rc=$?
  TIMES+=("$label $((SECONDS - start)) s")
  echo "test-integration: $label took $((SECONDS - start)) s"
  return "$rc"
}
as_root() { [ "$(id -u)" = 0 ]; }

comfyui() { bash scripts/comfyui_setup.sh .comfyui; }

chromium_part() {
  if [ -n "${SPATIALSCORE_CHROMIUM:-}" ]; then
    [ -x "$SPATIALSCORE_CHROMIUM" ] || die "SPATIALSCORE_CHROMIUM=$SPATIALSCORE_CHROMIUM is not an executable"
    return
  fi
  command -v chromium >/dev/null 2>&1 && return
  as_root || die "Chromium is not installed and this is not root: apt-get update && apt-get install -y chromium" \
                 "(as root), or set SPATIALSCORE_CHROMIUM to a Chromium binary"
  echo "installing Debian's chromium ..."
  apt-get update -q >/dev/null || die "apt-get update failed (above): Debian's package lists are needed for chromium"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null ||
    die "apt-get install chromium failed (above)"
  command -v chromium >/dev/null 2>&1 || die "apt-get installed chromium but no chromium command is on PATH"
}

node_part() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    as_root || die "node and npm are needed (>= 18): apt-get install -y nodejs npm (as root)"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null ||
      die "apt-get install nodejs npm failed (above)"
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 18 ] || die "node $(node --version) is too old: the tests need Node.js >= 18"
  if [ -z "${SPATIALSCORE_PLAYWRIGHT:-}" ] && [ ! -f .venv-node/node_modules/playwright-core/package.json ]; then
    echo "installing playwright-core@$PLAYWRIGHT_CORE_VERSION into .venv-node/ ..."
    npm install --prefix .venv-node --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_CORE_VERSION" ||
      die "npm install playwright-core@$PLAYWRIGHT_CORE_VERSION failed (above)"
  fi
}

run_tests() {
  local files
  # every test file with a real_parts test; -m real_parts picks those tests in them
  mapfile -t files < <(grep -rlE "pytest\.mark\.real_parts" tests research 2>/dev/null | grep -E '/test_[^/]*\.py$' | sort)
  [ "${#files[@]}" -gt 0 ] || die "no test is marked real_parts"
  rm -f "$JUNIT"
  local rc=0
  SPATIALSCORE_REQUIRE_REAL=1 SPATIALSCORE_COMFYUI="$ROOT/.comfyui/ComfyUI" \
    SPATIALSCORE_COMFYUI_PYTHON="$ROOT/.comfyui/venv/bin/python" \
    SPATIALSCORE_COMFYUI_STARTUP_S="${SPATIALSCORE_COMFYUI_STARTUP_S:-900}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" \
    .comfyui/venv/bin/python -m pytest -m real_parts --junitxml="$JUNIT" --durations=10 ${PYTEST_ARGS:--q} "${files[@]}" || rc=$?
  # 0 skipped and at least one test run, whatever pytest's exit code says
  .comfyui/venv/bin/python - "$JUNIT" <<'EOF' || rc=1
import sys
import xml.etree.ElementTree as ET
try:
    suites = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as exc:
    sys.exit(f"test-integration: no test report ({exc})")
suites = [suites] if suites.tag == "testsuite" else list(suites)
n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
print(f"test-integration: {passed} passed, {n['failures'] + n['errors']} failed, {n['skipped']} skipped")
if n["skipped"]:
    sys.exit("test-integration: a test was skipped; every test marked real_parts must run here")
if n["tests"] == 0:
    sys.exit("test-integration: no test ran")
EOF
  return "$rc"
}

START=$SECONDS
timed "ComfyUI + its venv" comfyui || exit $?
timed "Chromium" chromium_part || exit $?
timed "node + playwright-core" node_part || exit $?
rc=0
timed "tests" run_tests || rc=$?
echo "test-integration: $(IFS=';'; echo "${TIMES[*]}" | sed 's/;/, /g'); total $((SECONDS - START)) s"
exit "$rc"
