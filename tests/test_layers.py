"""The import structure of training/ and nodes/: no circles, no import against the layers, no private names
imported across files.

The layers, lowest first (a module may import its own layer and the layers below it, never one above):

    training.common   < training.dataset < training.reward < training.grpo < training.bestofn
    < training.recipes      recipes that compose several stages (the shapes-gen scorer needs GRPO's generator)
    < entry points          a stage's command lines: training.<stage>.__main__ and training.<stage>.cli(.*), and
                            the modules that keep a documented command's old name (COMMANDS), which only run one
    < training.demo, training.demo_grpo
    < nodes

Entry points are where the stages are put together: a lower stage that needs a higher one takes it as an argument
(the dataset builder's verifier and the review page's margins are handed `load_scorer`), and the command line of
that stage is what hands it over. No library module imports an entry point.

Every import counts, at the top of a file or inside a function (a lazy import is an import), relative or absolute.
`training/__init__.py` (the package root) and research/ (outside the product; it may import anything) are not
checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("training", "nodes")
STAGES = ("training.common", "training.dataset", "training.reward", "training.grpo", "training.bestofn",
          "training.recipes")
ENTRY = len(STAGES)  # the entry points' layer
TOP = {"training.demo": ENTRY + 1, "training.demo_grpo": ENTRY + 1, "nodes": ENTRY + 2}
# `python -m <name>` commands whose code moved under the stage's cli/: the module at the old name only runs it
COMMANDS = {"training.grpo.sample": "training.grpo.cli.sample",
            "training.grpo.sample_eval": "training.grpo.cli.sample_eval",
            "training.bestofn.measure": "training.bestofn.cli.measure"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}


def is_entry_point(module: str) -> bool:
    parts = module.split(".")
    return module in COMMANDS or (parts[0] == "training" and len(parts) > 2 and (parts[-1] == "__main__"
                                                                                 or "cli" in parts[2:]))


def layer(module: str) -> int | None:
    """The module's layer, or None for the unchecked package root."""
    for name, index in TOP.items():
        if module == name or module.startswith(name + "."):
            return index
    if is_entry_point(module):
        return ENTRY
    for index, name in enumerate(STAGES):
        if module == name or module.startswith(name + "."):
            return index
    return None


def _resolve(current: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".") if path.name == "__init__.py" else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(mods: dict[str, Path]) -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """({module: modules it imports}, [(importer, module, private name)])."""
    edges: dict[str, set[str]] = {}
    private: list[tuple[str, str, str]] = []
    for current, path in mods.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(current, path, node)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    names.append(full if full in mods else base)
                    if alias.name.startswith("_") and not alias.name.startswith("__") and base in mods:
                        private.append((current, base, alias.name))
            for name in names:
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                if name and name != current:
                    targets.add(name)
        edges[current] = targets
    return edges, private


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def against_layers(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    bad = []
    for importer, targets in edges.items():
        for target in targets:
            low, high = layer(importer), layer(target)
            if low is not None and high is not None and high > low:
                bad.append((importer, target))
    return sorted(bad)


def report(root: Path = ROOT) -> dict:
    edges, private = import_graph(modules(root))
    checked = [p for p in private if layer(p[0]) is not None]
    return {"modules": len(edges), "circles": circles(edges), "against_layers": against_layers(edges),
            "private": sorted(checked)}


GRAPH = report()


def test_the_layers_are_known():
    assert layer("training.common.atomic") == 0 and layer("training.bestofn.run") == 4
    assert layer("training.dataset.__main__") == layer("training.reward.cli.score") == ENTRY
    assert layer("training.demo") < layer("nodes.logic.loading")
    assert layer("training") is None
    assert GRAPH["modules"] > 100


def test_no_import_circles():
    assert GRAPH["circles"] == [], "\n".join(" <-> ".join(c) for c in GRAPH["circles"])


def test_no_import_against_the_layers():
    assert GRAPH["against_layers"] == [], "\n".join(f"{a} -> {b}" for a, b in GRAPH["against_layers"])


def test_a_kept_command_name_only_runs_its_command_line():
    mods = modules()
    edges, _ = import_graph(mods)
    for old, new in COMMANDS.items():
        if old in mods:
            assert edges[old] == {new}, f"{old} imports {sorted(edges[old])}; it should only run {new}"
            assert len(mods[old].read_text(encoding="utf-8").splitlines()) <= 12, f"{old} is more than a thin entry"


COMFY_MODULES = ("comfy", "comfy_api", "comfy_execution", "comfy_extras", "folder_paths", "server", "execution")


def external_imports(path: Path) -> set[str]:
    """The top-level names of every absolute import in a file, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_nodes_logic_imports_no_comfy():
    """nodes/logic/ is the ComfyUI-free part of the nodes: no module there imports ComfyUI, or nodes/comfy/ (what
    runs on ComfyUI's classes), even lazily."""
    mods = modules()
    edges, _ = import_graph(mods)
    logic = [m for m in mods if m == "nodes.logic" or m.startswith("nodes.logic.")]
    assert logic
    bad = [(m, name) for m in logic for name in sorted(external_imports(mods[m]) & set(COMFY_MODULES))]
    bad += [(m, target) for m in logic for target in sorted(edges[m]) if target.startswith("nodes.comfy")]
    assert bad == [], "\n".join(f"{m} imports {name}" for m, name in bad)


def test_no_private_name_imported_across_files():
    assert GRAPH["private"] == [], "\n".join(f"{a} <- {b}.{n}" for a, b, n in GRAPH["private"])


if __name__ == "__main__":  # the numbers, for the record: python tests/test_layers.py
    for key in ("circles", "against_layers", "private"):
        print(f"{key}: {len(GRAPH[key])}")
        for item in GRAPH[key]:
            print("   ", item)
