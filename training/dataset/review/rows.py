"""A dataset folder as the review page sees it: a compact index of every pair (for filters, progress and
navigation in the browser) and each pair's details on demand (highlighted prompts, automatic verdicts)."""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path

from ..manifest import MANIFEST, REQUIRED_KEYS, ManifestError, read_jsonl
from .highlight import diff_segments

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
ONLY = ("doubtful", "unreviewed", "all")


def open_dataset_folder(folder: str | os.PathLike) -> Path:
    """The folder, checked: it exists, is a folder, and holds a manifest. Errors say what was expected."""
    path = Path(os.path.expanduser(str(folder)))
    if not path.exists():
        raise ManifestError(f"dataset folder not found: {path}")
    if not path.is_dir():
        raise ManifestError(f"{path} is a file, not a dataset folder (expected the folder that holds {MANIFEST})")
    if not (path / MANIFEST).is_file():
        raise ManifestError(f"{path} is not a dataset: it has no {MANIFEST} (expected a folder written by "
                            "`python -m training.dataset build`)")
    return path.resolve()


def _predicate(change: dict) -> str | None:
    for side in ("before", "after"):
        value = change.get(side)
        if isinstance(value, dict) and isinstance(value.get("predicate"), str):
            return value["predicate"]
    return None


class ReviewRows:
    """The pairs of one dataset folder (optionally one split), read once; verdicts live in the VerdictStore."""

    def __init__(self, folder: str | os.PathLike, split: str | None = None, doubt_margin: float = 0.5):
        self.folder = open_dataset_folder(folder)
        read = read_jsonl(self.folder / MANIFEST, REQUIRED_KEYS)
        self.problems = read.problems  # bad manifest lines: reported by the caller, never fatal
        rows = read.rows
        splits = sorted({str(r.get("split")) for r in rows})
        if split and split != "all":
            rows = [r for r in rows if r.get("split") == split]
        if not rows:
            where = f"split {split!r} has none (splits present: {', '.join(splits) or 'none'})" if split else \
                "its manifest has no valid rows"
            raise ManifestError(f"{self.folder / MANIFEST}: no pairs to review: {where}")
        self.rows = rows
        self.split = split
        self.doubt_margin = doubt_margin
        self.by_id: dict[str, int] = {}
        for i, r in enumerate(rows):
            self.by_id.setdefault(r["id"], i)  # ids are unique in built datasets; a duplicate shares the verdict
        self._live: dict[int, dict] = {}
        self._live_lock = threading.Lock()
        self.entries = [self._entry(i, r) for i, r in enumerate(rows)]
        if any(r.get("world") == "shapes" for r in rows):  # the first pair shown should not wait for numpy & co.
            threading.Thread(target=importlib.import_module, args=(__package__.rsplit(".", 1)[0] + ".oracle",),
                             daemon=True).start()

    # -- the index the page filters and navigates -------------------------------------------------------------
    def image_path(self, row: dict, side: str, resolve: bool = True) -> Path | None:
        """The image file of `side` ("chosen"/"rejected") if it exists inside the dataset folder, else None.
        resolve=False checks the written path only (fast, for the index of thousands of rows); serving resolves
        symlinks too, so that nothing outside the dataset is ever served, whatever the manifest says."""
        value = row.get(side)
        if not isinstance(value, str) or os.path.splitext(value)[1].lower() not in IMAGE_TYPES:
            return None
        path = os.path.normpath(os.path.join(self.folder, value))
        if resolve:
            path = os.path.realpath(path)
        if not path.startswith(str(self.folder) + os.sep) or not os.path.isfile(path):
            return None
        return Path(path)

    def _doubts(self, row: dict, missing: list[str]) -> list[str]:
        doubts = [f"{side} image missing" for side in missing]
        verification = row.get("verification") if isinstance(row.get("verification"), dict) else {}
        oracle, scorer = verification.get("oracle"), verification.get("scorer")
        if isinstance(oracle, dict):
            if not oracle.get("chosen"):
                doubts.append("oracle: chosen does not satisfy the prompt")
            if not oracle.get("rejected"):
                doubts.append("oracle: rejected satisfies the prompt")
        if isinstance(scorer, dict) and isinstance(scorer.get("margin"), (int, float)):
            if scorer["margin"] < self.doubt_margin:
                doubts.append(f"scorer margin {scorer['margin']:.3g} < {self.doubt_margin:g}")
        if not isinstance(oracle, dict) and not isinstance(scorer, dict):
            doubts.append("no automatic check")
        return doubts

    def _entry(self, i: int, row: dict) -> dict:
        missing = [side for side in ("chosen", "rejected") if self.image_path(row, side, resolve=False) is None]
        relations = sorted({p for p in map(_predicate, row.get("changed", []) if isinstance(row.get("changed"), list)
                                           else []) if p})
        entry = {"i": i, "id": row["id"], "split": row.get("split"), "n": row.get("perturbations"),
                 "rel": relations, "doubt": self._doubts(row, missing)}
        if missing:
            entry["missing"] = missing
        return entry

    # -- one pair, in full -----------------------------------------------------------------------------------
    def details(self, i: int) -> dict:
        row = self.rows[i]
        prompt_segments, perturbed_segments = diff_segments(row["prompt"], row["perturbed_prompt"])
        changes = [{"op": c.get("op"), "predicate": _predicate(c), "before": c.get("before_text"),
                    "after": c.get("after_text"), "index": c.get("index")}
                   for c in row.get("changed", []) if isinstance(c, dict)]
        verification = row.get("verification") if isinstance(row.get("verification"), dict) else {}
        auto = {"oracle": verification.get("oracle"), "scorer": verification.get("scorer"),
                # the oracle re-run on the image files comes from api/oracle, after the pair is on screen
                "oracle_images": row.get("world") == "shapes" and not self.entries[i].get("missing")}
        return {**self.entries[i], "prompt": prompt_segments, "perturbed": perturbed_segments, "changes": changes,
                "world": row.get("world"), "generator": row.get("generator"), "auto": auto,
                "files": {side: row.get(side) for side in ("chosen", "rejected")}}

    def live_oracle(self, i: int) -> dict:
        """The shapes oracle re-run on the image files: does the chosen image satisfy every relation, and does the
        rejected one break exactly the changed ones (it catches an image that also breaks an unperturbed one)?"""
        with self._live_lock:
            if i in self._live:
                return self._live[i]
        from ..oracle import PromptParseError, find_objects, judge_objects, parse_prompt

        row = self.rows[i]
        try:
            prompt = parse_prompt(row.get("plain_prompt", row["prompt"]))
            colors = sorted({c for r in prompt for c in (r.subject[0], r.object[0])})
            chosen = judge_objects(find_objects(self.folder / row["chosen"], colors), prompt).holds
            rejected = judge_objects(find_objects(self.folder / row["rejected"], colors), prompt).holds
            changed = {c.get("index") for c in row.get("changed", []) if isinstance(c, dict)}
            exact = all((k in changed) != h for k, h in enumerate(rejected))
            result = {"chosen_all": all(chosen), "rejected_exact": exact,
                      "relations": [{"text": r.text, "chosen": c, "rejected": h, "changed": k in changed}
                                    for k, (r, c, h) in enumerate(zip(prompt, chosen, rejected, strict=True))]}
        except (PromptParseError, OSError, ValueError) as exc:
            result = {"error": str(exc)}
        with self._live_lock:
            self._live[i] = result
        return result
