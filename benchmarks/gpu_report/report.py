"""The report: every item with its predicted and measured figures, written as JSON and as a markdown table that
drops into BENCHMARKS.md. Rewritten (atomically) whenever an item starts or ends, so a kill keeps what was measured.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from training.common.atomic import write_json, write_text

from . import device
from .items import ITEMS, Item

JSON_FILE, MD_FILE = "gpu_report.json", "gpu_report.md"
TOOL = "benchmarks.gpu_report"


def fmt(value: float | None, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if unit == "GiB":
        return f"{value:.2f}"
    if unit == "x":
        return f"{value:.1f}x"
    if unit == "%":
        return f"{100 * value:.0f}%"
    return f"{value:.3g}"


class Report:
    def __init__(self, folder: Path, shape: str, budget_s: float, command: str, info: dict, preflight: list[str],
                 started: float):
        self.folder, self.shape = folder, shape
        self.started = started  # time.monotonic() when the command started: the budget's clock
        self.data = {
            "tool": TOOL, "command": command, "shape": shape, "budget_s": budget_s,
            "started_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "elapsed_s": 0.0, "finished": False,
            "device": dict(info, description=device.describe(info)), "preflight": preflight,
            "items": [self._entry(item) for item in ITEMS], "summary": "",
        }

    def _entry(self, item: Item) -> dict:
        return {"name": item.name, "runs": item.runs[self.shape], "status": "pending", "reason": "",
                "plan_s": None, "plan_parts": {}, "need_gib": None, "wall_s": None,
                "rows": [self._row(m, {}) for m in item.measures()], "info": {}, "log": None}

    @staticmethod
    def _row(measure, measured: dict) -> dict:
        value = measure.derive(measured) if measure.derive else measured.get(measure.key)
        predicted = measure.predicted.value
        ratio = value / predicted if value is not None and predicted else None
        return {"key": measure.key, "measure": measure.label, "unit": measure.unit, "predicted": predicted,
                "predicted_source": measure.predicted.source, "measured": value, "ratio": ratio}

    def entry(self, name: str) -> dict:
        return next(e for e in self.data["items"] if e["name"] == name)

    def update(self, name: str, **fields) -> None:
        self.entry(name).update(fields)
        self.write()

    def measured(self, item: Item, record: dict) -> None:
        """Put an item's figures (what its process wrote) beside the predictions."""
        entry = self.entry(item.name)
        entry["rows"] = [self._row(m, record.get("measured", {})) for m in item.measures()]
        entry["info"] = record.get("info", {})

    def write(self, summary: str = "", finished: bool = False) -> None:
        self.data.update(elapsed_s=round(time.monotonic() - self.started, 1), finished=finished, summary=summary)
        write_json(self.folder / JSON_FILE, self.data)
        write_text(self.folder / MD_FILE, self.markdown())

    def markdown(self) -> str:
        d = self.data
        dev = d["device"]
        libs = ", ".join(f"{k} {dev.get(k) or 'missing'}" for k in ("transformers", "peft", "diffusers"))
        lines = [f"### GPU report: {dev['name']}" if dev["cuda"] else f"### GPU report ({d['shape']} shape): {dev['name']}",
                 "",
                 f"Device: {dev['description']}; {libs}. Command: `{d['command']}`, started {d['started_utc']}, "
                 f"{d['elapsed_s']:.0f} s of the {d['budget_s']:.0f} s budget"
                 + ("." if d["finished"] else " (still running, or killed: the items below are what was done)."),
                 "",
                 "Predicted: the dry runs on fake tensors (`benchmarks/dryrun/results/`), at 40% of 989 TFLOP/s. "
                 "A ratio above 1 is slower, or more memory, than predicted (for a speed-up or a utilisation, "
                 "better).",
                 ""]
        if d["shape"] == "mini":
            lines += ["Mini shape on the CPU: toy models. The predicted column is the full-size dry runs', so the "
                      "ratios here only show that the report works, not how the models do.", ""]
        lines += ["| item | measure | predicted | measured | measured / predicted |", "|---|---|---:|---:|---:|"]
        for e in d["items"]:
            for i, row in enumerate(e["rows"]):
                shown = fmt(row["measured"], row["unit"])
                if shown == "—" and i == 0 and e["status"] != "done":
                    shown = e["status"]
                ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}"
                lines.append(f"| {e['name'] if i == 0 else ''} | {row['measure']} | "
                             f"{fmt(row['predicted'], row['unit'])} | {shown} | {ratio} |")
        lines.append("")
        for e in d["items"]:
            plan = f"; plan {e['plan_s']:.0f} s" if e["plan_s"] is not None else ""
            took = f", {e['wall_s']:.0f} s" if e["wall_s"] is not None else ""
            why = f": {e['reason']}" if e["reason"] else ""
            lines.append(f"- **{e['name']}** ({e['status']}{took}{plan}): {e['runs']}{why}")
        if d["summary"]:
            lines += ["", d["summary"]]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        d, items = self.data, self.data["items"]
        measured = [e["name"] for e in items if e["status"] in ("done", "partial")]
        others = {}
        for e in items:
            if e["status"] not in ("done", "partial"):
                others.setdefault(e["status"], []).append(e["name"])
        worst = max(((r["ratio"], e["name"], r["measure"].strip()) for e in items for r in e["rows"]
                     if r["ratio"]), key=lambda t: abs(math.log(t[0])), default=None)
        parts = [f"{len(measured)} of {len(items)} items measured" + (f" ({', '.join(measured)})" if measured else "")]
        parts += [f"{status}: {', '.join(names)}" for status, names in others.items()]
        parts.append(f"{time.monotonic() - self.started:.0f} s of {d['budget_s']:.0f} s")
        if worst:
            parts.append(f"furthest from its prediction: {worst[1]} {worst[2]} x{worst[0]:.2f}")
        return f"gpu_report ({d['shape']}, {d['device']['name']}): " + "; ".join(parts) + \
            f"; {self.folder / MD_FILE}"
