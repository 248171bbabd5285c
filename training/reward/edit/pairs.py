"""Edit pairs: (instruction, source image, chosen edit, rejected edit), from a shapes-edit folder or any JSONL.

A pairs line with a `source` key is an edit pair:
    instruction     the edit asked for (required; `prompt` is accepted as its name too)
    source          the image before the edit (required), path relative to the file
    chosen          the better edit (required)
    rejected        the worse edit (required)
    edit_kind       (optional) move / recolor / remove / add ... : the by-edit-kind breakdown
    mistake         (optional) what is wrong with `rejected`: the by-mistake breakdown
    edit_region     (optional) boxes [x0, y0, x1, y1] in 0..1 where the chosen edit changed the source
    rejected_region (optional) the same for the rejected edit (region-grounding training needs both)
    split, id, scenes (optional)
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..train.pairs import PairsFileError, image_paths, pairs_file, read_rows, select_split
from .regions import region_problem


@dataclass(frozen=True)
class EditPair:
    instruction: str
    source: Path
    chosen: Path
    rejected: Path
    edit_kind: str | None = None
    mistake: str | None = None
    chosen_region: tuple | None = None
    rejected_region: tuple | None = None
    split: str | None = None
    id: str = ""
    line: int = 0
    scenes: dict | None = None

    @property
    def image_files(self) -> tuple[Path, ...]:
        return self.source, self.chosen, self.rejected


def is_edit_file(path: str | os.PathLike) -> bool:
    """Whether a dataset folder / pairs file holds edit pairs (its first non-blank line has a `source` key)."""
    file = pairs_file(path)
    with open(file, encoding="utf-8", errors="replace") as f:
        for raw in f:
            if raw.strip():
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError:
                    return False
                return isinstance(row, dict) and "source" in row
    return False


def _boxes(value, key: str, problems: list[str]):
    if value is None:
        return None
    problem = region_problem(value)
    if problem is not None:
        problems.append(f"'{key}' must be a list of boxes [x0, y0, x1, y1] in 0..1: {problem}")
        return None
    return tuple(tuple(float(v) for v in b) for b in value)


def _parse(row, base: Path, check_files: bool) -> tuple[EditPair | None, list[str]]:
    if not isinstance(row, dict):
        return None, [f"expected a JSON object, got {type(row).__name__}"]
    problems: list[str] = []
    text = row.get("instruction", row.get("prompt"))
    if not isinstance(text, str) or not text.strip():
        problems.append("'instruction' must be a non-empty string" if ("instruction" in row or "prompt" in row)
                        else "missing 'instruction'")
    paths = image_paths(row, ("source", "chosen", "rejected"), base, check_files, problems)
    if len(paths) == 3 and paths["chosen"] == paths["rejected"]:
        problems.append("'chosen' and 'rejected' are the same image")
    for key in ("edit_kind", "mistake", "split"):
        if row.get(key) is not None and not isinstance(row[key], str):
            problems.append(f"'{key}' must be a string, got {row[key]!r}")
    chosen_region = _boxes(row.get("edit_region"), "edit_region", problems)
    rejected_region = _boxes(row.get("rejected_region"), "rejected_region", problems)
    if problems:
        return None, problems
    return EditPair(text, paths["source"], paths["chosen"], paths["rejected"], row.get("edit_kind"),
                    row.get("mistake"), chosen_region, rejected_region, row.get("split"), str(row.get("id", "")),
                    0, row.get("scenes") if isinstance(row.get("scenes"), dict) else None), []


def read_edit_pairs(path: str | os.PathLike, split: str | None = None, check_files: bool = True) -> list[EditPair]:
    """Every edit pair of a folder or JSONL (only `split` if given, "all"/None: every row); all bad lines are
    reported at once in a PairsFileError."""
    file = pairs_file(path)
    pairs = read_rows(file, lambda row, base: _parse(row, base, check_files), "edit pairs file",
                      "instruction, source, chosen, rejected")
    return select_split(pairs, split, file)


def fingerprint(pairs: list[EditPair]) -> str:
    h = hashlib.sha256()
    for p in pairs:
        h.update(f"{p.instruction}\0{p.source}\0{p.chosen}\0{p.rejected}\n".encode())
    return h.hexdigest()[:16]


def load_edit_images(pair: EditPair):
    """(source, chosen, rejected) as RGB PIL images; a broken file names itself and its line."""
    from ...common.images import ImageInputError, load_image_file
    from .two_images import size_mismatch

    try:
        source, chosen, rejected = (load_image_file(str(p)) for p in (pair.source, pair.chosen, pair.rejected))
    except ImageInputError as exc:
        raise PairsFileError(f"edit pair on line {pair.line}: {exc}") from exc
    for key, image in (("chosen", chosen), ("rejected", rejected)):
        problem = size_mismatch(source, image, f"'source' {pair.source}", f"'{key}' {getattr(pair, key)}")
        if problem is not None:
            raise PairsFileError(f"edit pair on line {pair.line}: {problem}")
    return source, chosen, rejected
