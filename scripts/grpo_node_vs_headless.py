"""The shapes GRPO example workflow in a real ComfyUI against the headless trainer with the same settings.

    SPATIALSCORE_COMFYUI=.comfyui/ComfyUI python scripts/grpo_node_vs_headless.py --out runs/node_vs_headless

1. Starts ComfyUI (127.0.0.1, its own base folder under --out, this pack linked in) and queues
   workflows/spatialscore_shapes_grpo.json through /prompt as it ships (40 GRPO steps of 24 samples on CPU).
2. Takes the run's own config.json (what the node handed the trainer), points it at the shipped generator and
   scorer instead of ComfyUI's objects, and runs `python -m training.grpo --config` with it.
3. Judges both LoRAs, and the generator without one, on the 400 held-out prompts with the pixel oracle
   (`python -m training.grpo.sample_eval`), and writes --out/comparison.json.
Each stage is skipped when its result exists, so the command resumes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.nodes.comfyui_harness import ComfyServer, execution_error, find_comfyui, ui_to_api  # noqa: E402

HELDOUT = ROOT / "training/grpo/configs/shapes_heldout.txt"
LORA_NAME = "spatialscore_shapes_grpo"


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def write_toml(config: dict, path: Path) -> None:
    lines = []
    for section, fields in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in fields.items() if value is not None]
        lines.append("")
    path.write_text("\n".join(lines))


def run_node(out: Path) -> Path:
    """The workflow through /prompt; returns the node's run folder."""
    run_dir = out / "comfy_base" / "output" / "spatialscore_grpo" / LORA_NAME
    lora = out / "comfy_base" / "models" / "loras" / f"{LORA_NAME}.safetensors"
    if lora.is_file():
        return run_dir
    checkout, python, reason = find_comfyui()
    if checkout is None:
        raise SystemExit(reason)
    with ComfyServer(checkout, python, out / "comfy_base") as comfy:
        info = comfy.get("/object_info")
        prompt = ui_to_api(json.loads((ROOT / "workflows/spatialscore_shapes_grpo.json").read_text()), info)
        code, body = comfy.queue(prompt)
        if code != 200 or body.get("node_errors"):
            raise SystemExit(f"ComfyUI refused the workflow: {body}")
        entry = comfy.wait(body["prompt_id"], 6 * 3600)
        if entry["status"]["status_str"] != "success":
            raise SystemExit(f"the workflow failed: {execution_error(entry)}\n{comfy.log_tail(40)}")
    return run_dir


def run_headless(node_run: Path, out: Path) -> Path:
    folder = out / "headless"
    if (folder / "lora.safetensors").is_file():
        return folder
    config = json.loads((node_run / "config.json").read_text())
    config["model"]["path"] = "shapes"  # the shipped generator, which the workflow's loader also loads
    config["reward"]["path"] = "shapes"
    config["output"]["dir"] = str(folder)
    write_toml(config, out / "headless.toml")
    cmd = [sys.executable, "-m", "training.grpo", "--config", str(out / "headless.toml"), "--out", str(folder)]
    if (folder / "checkpoints").is_dir():
        cmd.append("--resume")
    subprocess.run(cmd, check=True, cwd=ROOT)
    return folder


def evaluate(lora: Path | None, out: Path, name: str) -> dict:
    path = out / f"eval_{name}.json"
    if not path.is_file():
        cmd = [sys.executable, "-m", "training.grpo.sample_eval", "--model", "shapes", "--prompts", str(HELDOUT),
               "--json", str(path), "--grid", str(out / f"eval_{name}.png")]  # fmt: skip
        if lora is not None:
            cmd += ["--lora", str(lora)]
        subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(path.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    node_run = run_node(out)
    headless = run_headless(node_run, out)
    result = {
        "generator": evaluate(None, out, "generator"),
        "comfyui_node": evaluate(out / "comfy_base/models/loras" / f"{LORA_NAME}.safetensors", out, "comfyui_node"),
        "headless": evaluate(headless / "lora.safetensors", out, "headless"),
    }
    (out / "comparison.json").write_text(json.dumps(result, indent=1))
    keys = ("oracle_objects_ok", "oracle_relation_ok", "oracle_all_ok")
    for name, figures in result.items():
        print(f"{name:14s}", "  ".join(f"{k.removeprefix('oracle_')} {100 * figures[k]:.1f}%" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
