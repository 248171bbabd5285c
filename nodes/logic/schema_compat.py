"""Released node schemas must stay loadable: a committed snapshot and the check against it.

ComfyUI saves a workflow with node ids, widget values in input order, and links to output slots. So a released
node id, an input (name, type, required or not), a combo value, or an output (position, name, type, list or not)
may never disappear or change. New nodes, new optional inputs, new combo values and outputs appended at the end
are fine. The registry's node-diff check reads only NODE_CLASS_MAPPINGS, which a V3 pack does not define; this is
the check for this pack, run against ComfyUI's /object_info (tests/nodes).

    python -m nodes.logic.schema_compat object_info.json > tests/nodes/fixtures/node_schema.json   # at a release
"""

from __future__ import annotations

import json
import sys

# Combo inputs whose choices are the user's files: their options are not part of the schema.
DYNAMIC_OPTIONS = {("SpatialScoreLoader", "scorer")}


def _input(node: str, name: str, spec: list, required: bool) -> dict:
    kind, opts = spec[0], (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {})
    entry = {"type": "COMBO" if isinstance(kind, list) else kind, "required": required}
    if entry["type"] == "COMBO" and (node, name) not in DYNAMIC_OPTIONS:
        entry["options"] = list(kind) if isinstance(kind, list) else list(opts.get("options", []))
    return entry


def snapshot(object_info: dict, prefix: str = "SpatialScore") -> dict:
    """The compatibility-relevant part of /object_info for the nodes whose id starts with `prefix`."""
    out = {}
    for node in sorted(n for n in object_info if n.startswith(prefix)):
        info = object_info[node]
        inputs = {}
        for section, required in (("required", True), ("optional", False)):
            for name, spec in info.get("input", {}).get(section, {}).items():
                inputs[name] = _input(node, name, spec, required)
        outputs = [{"name": n, "type": t, "is_list": bool(lst)} for n, t, lst in
                   zip(info.get("output_name", []), info.get("output", []), info.get("output_is_list", []),
                       strict=True)]
        out[node] = {"inputs": inputs, "outputs": outputs}
    return out


def incompatible_changes(released: dict, current: dict) -> list[str]:
    """Every way `current` breaks a workflow saved with `released` (both from `snapshot`); [] when compatible."""
    problems = []
    for node, old in released.items():
        new = current.get(node)
        if new is None:
            problems.append(f"{node}: node removed or renamed")
            continue
        for name, spec in old["inputs"].items():
            now = new["inputs"].get(name)
            if now is None:
                problems.append(f"{node}: input {name!r} removed or renamed")
                continue
            if now["type"] != spec["type"]:
                problems.append(f"{node}: input {name!r} changed type {spec['type']} -> {now['type']}")
            if now["required"] and not spec["required"]:
                problems.append(f"{node}: input {name!r} became required")
            lost = [o for o in spec.get("options", []) if o not in now.get("options", spec.get("options", []))]
            if lost:
                problems.append(f"{node}: input {name!r} lost choices {lost}")
        for name, spec in new["inputs"].items():
            if name not in old["inputs"] and spec["required"]:
                problems.append(f"{node}: new input {name!r} is required (saved workflows lack it: make it "
                                "optional)")
        for i, out in enumerate(old["outputs"]):
            now = new["outputs"][i] if i < len(new["outputs"]) else None
            if now != out:
                problems.append(f"{node}: output {i} changed {out} -> {now} (links address outputs by position)")
    return problems


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        print(json.dumps(snapshot(json.load(f)), indent=1))
