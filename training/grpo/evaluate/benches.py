"""The prompt sets shipped with the pack, by name (`--bench`), and a user's own file (`--prompts`).

The files are in prompt_sets/ as their authors published them (README.md there: source, commit, licence and
attribution of each); the spatial part is chosen when they are read (formats.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..prompts import PromptFileError
from .formats import PromptItem, detect_format, read_items

DATA = Path(__file__).resolve().parent / "prompt_sets"
SHAPES_HELDOUT = Path(__file__).resolve().parents[1] / "configs" / "shapes_heldout.txt"


@dataclass(frozen=True)
class Bench:
    path: Path
    format: str
    what: str  # one line for the report
    objects: int | None = None  # objects per prompt where the set is built that way


BENCHES = {
    "shapes-heldout": Bench(SHAPES_HELDOUT, "text", "the shapes world's 400 held-out prompts (2 and 3 objects)"),
    "geneval-position": Bench(DATA / "geneval_evaluation_metadata.jsonl", "geneval",
                              'GenEval, the 100 "position" prompts (MIT, djghosh13/geneval)'),
    # every line is "a/an <object> <relation> a/an <object>" (tests/grpo/test_evaluate_prompt_sets.py checks it)
    "t2i-compbench-spatial": Bench(DATA / "t2i_compbench_spatial_val.txt", "text",
                                   "T2I-CompBench spatial_val, 300 prompts (MIT, Karine-Huang/T2I-CompBench)", 2),
    "unigenbench-layout": Bench(DATA / "unigenbench_test_prompts_en.csv", "unigenbench",
                                "UniGenBench++ English short prompts with a 2-D or 3-D layout test point, 134 "
                                "(CC BY 4.0, CodeGoat24/UniGenBench)"),
    "dpg": Bench(DATA / "dpg_bench_prompts.jsonl", "dpg", "DPG-Bench, 1,065 dense prompts (Apache-2.0, "
                                                          "TencentQQGYLab/ELLA)"),
}  # fmt: skip


def load_bench(name: str) -> list[PromptItem]:
    if name not in BENCHES:
        raise PromptFileError(f"--bench {name}: not a shipped prompt set; choose one of {', '.join(BENCHES)}, or give "
                              "your own file with --prompts")  # fmt: skip
    bench = BENCHES[name]
    if not bench.path.exists():
        raise PromptFileError(f"the shipped prompt set {name!r} is missing from {bench.path}")
    items = read_items(bench.path, bench.format)
    if bench.objects is not None:
        items = [replace(item, objects=bench.objects) for item in items]
    return items


def load_prompt_set(bench: str | None = None, prompts: Path | None = None, limit: int | None = None
                    ) -> tuple[str, list[PromptItem]]:  # fmt: skip
    """(a description, the first `limit` items) of a shipped set or of a user's file in any supported format."""
    if (bench is None) == (prompts is None):
        raise PromptFileError("give either --bench NAME or --prompts FILE")
    if bench is not None:
        items, what = load_bench(bench), BENCHES[bench].what
    else:
        fmt = detect_format(prompts)
        items, what = read_items(prompts, fmt), f"{prompts} ({fmt} format)"
    if limit is not None:
        if limit < 1:
            raise PromptFileError(f"--limit {limit}: expected at least 1 prompt")
        if limit < len(items):
            what += f", the first {limit} of {len(items)}"
            items = items[:limit]
    return what, items
