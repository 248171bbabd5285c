"""Run a real ComfyUI with this pack installed, headless on 127.0.0.1, for the integration tests and scripts.

ComfyUI is found through environment variables, never downloaded:
  SPATIALSCORE_COMFYUI         the ComfyUI checkout (the folder with main.py)
  SPATIALSCORE_COMFYUI_PYTHON  the python that runs it (default: <checkout>/../venv/bin/python, else this python)
scripts/comfyui_setup.sh makes both. The server gets its own --base-directory (models, custom_nodes, input,
output, temp, user) in a temporary folder, with the pack symlinked into its custom_nodes, and an in-memory
database, so the checkout is never written to.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

PACK_ROOT = Path(__file__).resolve().parents[2]
PACK_NAME = "comfyui-spatialscore"


def find_comfyui() -> tuple[Path | None, Path | None, str]:
    """(checkout, python, reason): reason says why ComfyUI cannot be used when the first two are None."""
    folder = os.environ.get("SPATIALSCORE_COMFYUI")
    if not folder:
        return None, None, ("SPATIALSCORE_COMFYUI is not set: point it at a ComfyUI checkout to run the integration "
                            "test (scripts/comfyui_setup.sh makes one)")
    checkout = Path(folder).expanduser().resolve()
    if not (checkout / "main.py").is_file() or not (checkout / "comfy_api").is_dir():
        return None, None, f"SPATIALSCORE_COMFYUI={folder} is not a ComfyUI checkout (no main.py / comfy_api)"
    python = os.environ.get("SPATIALSCORE_COMFYUI_PYTHON")
    if python:
        python_path = Path(python).expanduser()
    elif (checkout.parent / "venv" / "bin" / "python").is_file():
        python_path = checkout.parent / "venv" / "bin" / "python"
    else:
        python_path = Path(sys.executable)
    if not python_path.exists():
        return None, None, f"SPATIALSCORE_COMFYUI_PYTHON={python_path} does not exist"
    return checkout, python_path, ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def comfyui_version(checkout: Path) -> str:
    text = (checkout / "comfyui_version.py").read_text(encoding="utf-8")
    return text.split("__version__ =", 1)[1].strip().strip("\"'") if "__version__" in text else "unknown"


class ComfyServer:
    """A ComfyUI process on 127.0.0.1; use as a context manager. Only the process it started is stopped."""

    def __init__(self, checkout: Path, python: Path, base: Path, extra_model_paths: Path | None = None,
                 startup_timeout: float | None = None):
        self.checkout, self.python, self.base = checkout, python, base
        self.extra_model_paths = extra_model_paths
        # a loaded 2-core machine can take longer than 4 minutes to import ComfyUI: SPATIALSCORE_COMFYUI_STARTUP_S
        self.startup_timeout = startup_timeout or float(os.environ.get("SPATIALSCORE_COMFYUI_STARTUP_S", "240"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / "comfyui.log"
        self.proc: subprocess.Popen | None = None
        self.client_id = uuid.uuid4().hex

    def prepare(self) -> None:
        for sub in ("custom_nodes", "models", "input", "output", "temp", "user"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        link = self.base / "custom_nodes" / PACK_NAME
        if not link.exists():
            link.symlink_to(PACK_ROOT, target_is_directory=True)

    def __enter__(self) -> ComfyServer:
        self.prepare()
        cmd = [str(self.python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--base-directory", str(self.base), "--database-url", "sqlite:///:memory:",
               "--disable-auto-launch", "--log-stdout"]
        if self.extra_model_paths is not None:
            cmd += ["--extra-model-paths-config", str(self.extra_model_paths)]
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(cmd, cwd=self.checkout, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            try:
                self.get("/system_stats", timeout=5)
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(1.0)
        self.__exit__(None, None, None)
        raise TimeoutError(f"ComfyUI did not answer within {self.startup_timeout:.0f} s:\n{self.log_tail()}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    # ----- HTTP -----
    def get(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return json.loads(r.read().decode("utf-8"))

    def post(self, path: str, payload: dict, timeout: float = 30) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, data=json.dumps(payload).encode("utf-8"),
                                     headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body = r.read().decode("utf-8")
                return r.status, json.loads(body) if body else {}
        except urllib.error.HTTPError as err:
            body = err.read().decode("utf-8")
            return err.code, json.loads(body) if body else {}

    def queue(self, prompt: dict) -> tuple[int, dict]:
        return self.post("/prompt", {"prompt": prompt, "client_id": self.client_id})

    def wait(self, prompt_id: str, timeout: float = 300.0) -> dict:
        """The /history entry of a prompt once it has finished (successfully or not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hist = self.get(f"/history/{prompt_id}")
            entry = hist.get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and \
                    entry["status"].get("status_str") in ("success", "error"):
                return entry
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI died while running {prompt_id}:\n{self.log_tail()}")
            time.sleep(0.5)
        raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s:\n{self.log_tail()}")


def execution_error(entry: dict) -> dict | None:
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            return data
    return None


def refused_once(comfy, body: dict, node: str, message: str) -> None:
    """One error on one node, one line in the summary (the dialog shows the summary and the node's list, as for
    any of ComfyUI's own validation errors), nothing queued, and the server still answers."""
    assert list(body.get("node_errors", {})) == [node], body
    errors = body["node_errors"][node]["errors"]
    assert len(errors) == 1 and message in errors[0]["details"], errors
    assert body["error"]["details"] == f"{errors[0]['message']}: {errors[0]['details']}", body["error"]
    queue = comfy.get("/queue")
    assert comfy.proc.poll() is None and not queue["queue_running"] and not queue["queue_pending"]
    assert comfy.get("/system_stats")["system"]["comfyui_version"]


# ----- UI-format workflow -> API-format prompt -----
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}


def _input_specs(info: dict) -> list[tuple[str, str, dict]]:
    order = info.get("input_order", {})
    specs = []
    for section in ("required", "optional"):
        entries = info.get("input", {}).get(section, {})
        for name in order.get(section, list(entries)):
            spec = entries[name]
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            specs.append((name, kind, spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}))
    return specs


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    """Convert a saved UI-format graph into the API format `/prompt` takes, as the frontend does for plain graphs.

    Widget values are read in input order (plus the frontend's extra control_after_generate and image upload
    values); linked inputs become [source node id, output slot]; muted nodes are left out. Groups, subgraphs,
    bypassed nodes and virtual nodes other than notes are not supported: the example graphs use none.
    """
    links = {link[0]: link for link in workflow.get("links", [])}
    muted = {n["id"] for n in workflow["nodes"] if n.get("mode", 0) == 2}  # "never": left out, as the frontend does
    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            if node["type"] in ("Note", "MarkdownNote"):
                continue
            raise ValueError(f"node {node['id']}: {node['type']} is not supported by this converter")
        if node["id"] in muted:
            continue
        if node.get("mode", 0) == 4:
            raise ValueError(f"node {node['id']} ({node['type']}) is bypassed")
        if any(links[s["link"]][1] in muted for s in node.get("inputs", []) if s.get("link") is not None):
            raise ValueError(f"node {node['id']} ({node['type']}) takes an input from a muted node")
        info = object_info.get(node["type"])
        if info is None:
            raise ValueError(f"node {node['id']}: unknown node type {node['type']!r} (not in /object_info)")
        linked = {}
        for slot in node.get("inputs", []):
            if slot.get("link") is not None:
                src = links[slot["link"]]
                linked[slot["name"]] = [str(src[1]), src[2]]
        values = list(node.get("widgets_values") or [])
        inputs = {}
        for name, kind, opts in _input_specs(info):
            if kind not in WIDGET_TYPES and not (kind == "COMBO"):
                continue
            if not values:
                break
            value = values.pop(0)
            if kind == "INT" and opts.get("control_after_generate") and values:
                values.pop(0)  # "fixed" / "randomize": a frontend-only widget
            if kind == "COMBO" and opts.get("image_upload") and values and values[0] == "image":
                values.pop(0)  # the upload button's value
            inputs[name] = value
        inputs.update(linked)
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


# ----- inputs for test graphs -----
def candidate_frames(n: int = 8, size: int = 128, seed: int = 0):
    """n distinct RGBA frames: random RGB, and an alpha that encodes the frame's index (MASK = 1 - alpha)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(n, size, size, 4), dtype=np.uint8)
    for i in range(n):
        frames[i, ..., 3] = 255 - 20 * (i + 1)
    return frames


def write_candidates(input_dir: Path, name: str = "candidates.png", n: int = 8, size: int = 128):
    """An animated PNG of n frames: ComfyUI's LoadImage turns it into an IMAGE batch of n and a MASK batch of n."""
    from PIL import Image

    frames = candidate_frames(n, size)
    pil = [Image.fromarray(f, mode="RGBA") for f in frames]
    pil[0].save(input_dir / name, save_all=True, append_images=pil[1:], duration=100, loop=0, disposal=0, blend=0)
    return frames


def write_latent(input_dir: Path, name: str = "candidates.latent", n: int = 8, channels: int = 16, size: int = 8):
    """A .latent file (LoadLatent) whose sample i is filled with the value i, to follow samples through a graph."""
    import torch
    from safetensors.torch import save_file

    samples = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, channels, size, size).contiguous()
    save_file({"latent_tensor": samples, "latent_format_version_0": torch.tensor([])}, str(input_dir / name))
    return samples
