"""Readers for the public prompt sets' own file formats, and which one a user's file is in.

Each reader returns `PromptItem`s in the file's order. A set's spatial part is chosen where the format marks it:
GenEval rows with "tag" == "position", UniGenBench++ rows whose test points include a 2-D or 3-D entity layout.
The other formats have no such mark and are read whole (T2I-CompBench ships its spatial prompts as their own file;
DPG-Bench's categories are in a 2 MB question table, not in its prompts).

  geneval        GenEval's evaluation_metadata.jsonl: {"tag", "include": [{"class", "count", ...}], "prompt"}
  unigenbench    UniGenBench++'s test_prompts_en.csv: index, prompt_en, sub_dims_en (JSON with "Testpoints")
  dpg            DPG-Bench: its folder of <item_id>.txt prompts, its dpg_bench.csv (item_id, text, ...: one row per
                 question, so each item_id once), or a .jsonl of {"id", "prompt"} (as shipped here)
  tiif           TIIF-Bench's *_prompts.jsonl: {"type", "short_description", "long_description"} (never shipped:
                 it has no licence; a user's own copy is read, its short descriptions)
  text           one prompt a line (T2I-CompBench's spatial_val.txt, the shapes held-out set, any .txt)
  jsonl          {"prompt": ...} a line (the GRPO trainer's prompt files)
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from ..prompts import MAX_PROMPT_CHARS, PromptFileError, load_prompts

FORMATS = ("geneval", "unigenbench", "dpg", "tiif", "text", "jsonl")
GENEVAL_SPATIAL_TAG = "position"
UNIGENBENCH_LAYOUT = {"Entity Layout - Two-Dimensional Space": "2-D layout",
                      "Entity Layout - Three-Dimensional Space": "3-D layout"}  # fmt: skip
MAX_FILE_BYTES = 64 * 1024 * 1024  # a prompt set is a few MB at most; a bigger file is not one


@dataclass(frozen=True)
class PromptItem:
    prompt: str
    source_id: str = ""  # where the prompt is in its source: a line number, an item id
    objects: int | None = None  # how many objects the prompt names, where the source says (GenEval's "include")
    category: str = ""  # the source's own label (GenEval's tag, UniGenBench++'s layout test points)


def detect_format(path: Path) -> str:
    """The format of a user's prompt file (or DPG-Bench folder), from its extension and first record."""
    if path.is_dir():
        if any(path.glob("*.txt")):
            return "dpg"
        raise PromptFileError(f"{path}: a folder without .txt prompts; expected DPG-Bench's prompts/ folder or a "
                              "prompt file")  # fmt: skip
    if not path.is_file():
        raise PromptFileError(f"prompt file not found: {path}")
    if path.suffix == ".csv":
        header = next(csv.reader(io.StringIO(_read(path).split("\n", 1)[0])), [])
        if {"prompt_en", "sub_dims_en"} <= set(header):
            return "unigenbench"
        if {"item_id", "text"} <= set(header):
            return "dpg"
        raise PromptFileError(f"{path}: a CSV with columns {header[:6]}; expected UniGenBench++'s (prompt_en, "
                              "sub_dims_en) or DPG-Bench's (item_id, text)")  # fmt: skip
    if path.suffix == ".jsonl":
        first = next((line for line in _read(path).splitlines() if line.strip()), "")
        try:
            record = json.loads(first)
        except json.JSONDecodeError as exc:
            raise PromptFileError(f"{path}:1: not valid JSON ({exc})") from exc
        if isinstance(record, dict) and "tag" in record and "include" in record:
            return "geneval"
        if isinstance(record, dict) and "short_description" in record:
            return "tiif"
        return "jsonl"
    return "text"


def read_items(path: Path, fmt: str | None = None) -> list[PromptItem]:
    """The spatial prompts of a file in `fmt` (detected when None), in file order."""
    fmt = fmt or detect_format(path)
    readers = {"geneval": read_geneval, "unigenbench": read_unigenbench, "dpg": read_dpg, "tiif": read_tiif,
               "text": _read_plain, "jsonl": _read_plain}  # fmt: skip
    if fmt not in readers:
        raise PromptFileError(f"unknown prompt format {fmt!r}; expected one of {', '.join(FORMATS)}")
    items = readers[fmt](path)
    if not items:
        raise PromptFileError(f"{path}: no prompts of the spatial kind in this {fmt} file")
    return items


def read_geneval(path: Path, tag: str | None = GENEVAL_SPATIAL_TAG) -> list[PromptItem]:
    """GenEval's rows (only those tagged `tag`; None: all); objects = the summed counts of "include"."""
    items = []
    for number, record in _jsonl_records(path):
        if not isinstance(record.get("prompt"), str) or not isinstance(record.get("include"), list):
            raise PromptFileError(f'{path}:{number}: expected GenEval\'s {{"tag", "include", "prompt"}}')
        if tag is not None and record.get("tag") != tag:
            continue
        count = sum(int(o.get("count", 1)) for o in record["include"] if isinstance(o, dict))
        items.append(PromptItem(_checked(record["prompt"], path, number), str(number - 1), count or None,
                                str(record.get("tag", ""))))  # fmt: skip
    return items


def read_unigenbench(path: Path, layout_only: bool = True) -> list[PromptItem]:
    """UniGenBench++'s rows whose test points include an entity layout (`layout_only`), else all rows."""
    items = []
    for number, row in enumerate(csv.DictReader(io.StringIO(_read(path))), start=2):
        try:
            points = json.loads(row["sub_dims_en"]).get("Testpoints", [])
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise PromptFileError(f"{path}:{number}: sub_dims_en is not UniGenBench++'s JSON ({exc})") from exc
        layout = [UNIGENBENCH_LAYOUT[p] for p in points if p in UNIGENBENCH_LAYOUT]
        if layout_only and not layout:
            continue
        items.append(PromptItem(_checked(row.get("prompt_en") or "", path, number), str(row.get("index", number)),
                                None, ", ".join(layout)))  # fmt: skip
    return items


def read_dpg(path: Path) -> list[PromptItem]:
    """DPG-Bench's prompts: the prompts/ folder (sorted by file name), dpg_bench.csv or a {"id", "prompt"} .jsonl."""
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        return [PromptItem(_checked(_read(f).strip(), f, 1), f.stem) for f in files]
    if path.suffix == ".csv":
        items, seen = [], set()
        for number, row in enumerate(csv.DictReader(io.StringIO(_read(path))), start=2):
            item_id = row.get("item_id") or ""
            if item_id in seen:
                continue  # the table has one row per question of an item; its prompt repeats
            seen.add(item_id)
            items.append(PromptItem(_checked(row.get("text") or "", path, number), item_id))
        return items
    return [PromptItem(_checked(r.get("prompt"), path, n), str(r.get("id", n))) for n, r in _jsonl_records(path)]


def read_tiif(path: Path, description: str = "short_description") -> list[PromptItem]:
    """TIIF-Bench's prompt rows (a user's copy: TIIF-Bench is not shipped), their short descriptions."""
    return [PromptItem(_checked(r.get(description), path, n), str(n - 1), None, str(r.get("type", "")))
            for n, r in _jsonl_records(path)]  # fmt: skip


def _read_plain(path: Path) -> list[PromptItem]:
    # the GRPO trainer's reader, so a prompt file means the same to `sample_eval` and to this evaluation
    return [PromptItem(p, str(i)) for i, p in enumerate(load_prompts(path))]


def _read(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise PromptFileError(f"{path}: {size} bytes; a prompt set is at most {MAX_FILE_BYTES} bytes")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptFileError(f"{path}: byte {exc.start} is not UTF-8; a prompt file is UTF-8 text") from None


def _jsonl_records(path: Path):
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptFileError(f"{path}:{number}: not valid JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise PromptFileError(f"{path}:{number}: expected a JSON object a line")
        yield number, record


def _checked(prompt, path: Path, number: int) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise PromptFileError(f"{path}:{number}: no prompt text")
    prompt = " ".join(prompt.split())  # one line: a prompt is shown, hashed and tokenised as one
    if len(prompt) > MAX_PROMPT_CHARS:
        raise PromptFileError(f"{path}:{number}: a prompt of {len(prompt)} characters; the limit is {MAX_PROMPT_CHARS}")
    return prompt
