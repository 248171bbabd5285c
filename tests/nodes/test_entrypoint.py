"""The pack's root module: importing it must be cheap and must never fail, with or without ComfyUI."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

IMPORT_PACK = f"""
import importlib.util, json, sys, time
t = time.perf_counter()
spec = importlib.util.spec_from_file_location("spatialscore_pack", {str(ROOT / '__init__.py')!r},
                                              submodule_search_locations=[{str(ROOT)!r}])
pack = importlib.util.module_from_spec(spec)
sys.modules["spatialscore_pack"] = pack
spec.loader.exec_module(pack)
print(json.dumps({{
    "seconds": time.perf_counter() - t,
    "has_entrypoint": callable(getattr(pack, "comfy_entrypoint", None)),
    "has_v1_mappings": hasattr(pack, "NODE_CLASS_MAPPINGS"),
    "web": getattr(pack, "WEB_DIRECTORY", None),
    "heavy": sorted(m for m in ("torch", "transformers", "comfy_api", "training") if m in sys.modules),
}}))
"""


def test_importing_the_pack_is_cheap_and_safe_without_comfyui():
    out = subprocess.run([sys.executable, "-c", IMPORT_PACK], capture_output=True, text=True, timeout=60,
                         cwd="/")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["has_entrypoint"] and not info["has_v1_mappings"]  # V1 mappings would disable the entry point
    assert info["web"] == "./web" and (ROOT / "web").is_dir()
    assert info["heavy"] == []  # nothing heavy at import: ComfyUI's start stays fast
    assert info["seconds"] < 1.0


def test_entrypoint_outside_comfyui_says_what_is_missing():
    code = IMPORT_PACK + """
import asyncio
try:
    asyncio.run(pack.comfy_entrypoint())
except RuntimeError as exc:
    print("ERROR:", exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    assert "ERROR: SpatialScore needs a ComfyUI with the V3 node API" in out.stdout


def test_node_logic_never_imports_comfyui():
    code = ("import sys; import nodes.logic.annotate, nodes.logic.discovery, nodes.logic.loading, "
            "nodes.logic.prompts, nodes.logic.ranking, nodes.logic.rerank, nodes.logic.scoring, "
            "nodes.logic.training_import; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('comfy', 'comfy_api', 'folder_paths')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
