"""Preference pairs (prompt, chosen image, rejected image) read from a dataset folder or any pairs JSONL.

A line is a JSON object with
    prompt          text the images were made for (required)
    chosen          image path, relative to the file (required): the image that satisfies the prompt
    rejected        image path, relative to the file (required): the image with perturbed relations
    perturbations   how many relations differ (optional int >= 1): the "1" / "2-3" columns of the report
    split           "train" / "val" / "test" (optional; dataset manifests have it)
    id              (optional) a name for the pair
    changes | changed_relations | relation_types   (optional) the changed relations; their predicate
                    ("left_of", "above", ...) gives the by-relation breakdown
A folder means its manifest.jsonl (what `python -m training.dataset build` writes).

Human verdicts (reviews.jsonl beside the pairs file, written by `python -m training.dataset review`) apply by id:
`reviews="default"` drops the pairs a reviewer rejected and exchanges the images of swapped ones (the perturbed
image was in fact the better one); "reviewed-only" keeps only the pairs a reviewer accepted or swapped; "ignore"
reads the file as it is. Without a reviews.jsonl, "default" and "ignore" are the same.

Every malformed line is reported at once, with its line number, before anything is trained or scored.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

MANIFEST = "manifest.jsonl"
MAX_REPORTED = 20
RELATION_KEYS = ("changes", "changed_relations", "changed", "relation_types")
REVIEW_MODES = ("default", "reviewed-only", "ignore")


class PairsFileError(ValueError):
    """A pairs file that cannot be used; the message names the file and every bad line."""


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: Path
    rejected: Path
    perturbations: int | None = None
    relations: tuple[str, ...] = ()  # predicates of the changed relations, when the file records them
    split: str | None = None
    id: str = ""
    line: int = 0
    # Where the prompt's words are in each image, from the dataset's scene layouts (chosen: "scene", rejected:
    # "perturbed_scene"): ((word, x, y), ...) per image, centres in [0, 1]. Only for grounding training.
    layouts: tuple[tuple[tuple[str, float, float], ...], tuple[tuple[str, float, float], ...]] | None = None

    @property
    def image_files(self) -> tuple[Path, ...]:
        return self.chosen, self.rejected

    @property
    def perturbation_bucket(self) -> str | None:
        """The paper's columns: "1" or "2-3" (more than 3 goes with "2-3"'s neighbour "4+")."""
        if self.perturbations is None:
            return None
        return "1" if self.perturbations == 1 else "2-3" if self.perturbations <= 3 else "4+"


def pairs_file(path: str | os.PathLike) -> Path:
    """A folder -> its manifest.jsonl; a file -> itself. Errors name what was expected."""
    path = Path(os.path.expanduser(str(path)))
    if path.is_dir():
        manifest = path / MANIFEST
        if not manifest.is_file():
            raise PairsFileError(f"{path} is a folder without {MANIFEST}: expected a dataset folder "
                                 f"(python -m training.dataset build --out {path}) or a pairs .jsonl file")
        return manifest
    if not path.exists():
        raise PairsFileError(f"pairs data not found: {path} (expected a dataset folder or a .jsonl file)")
    return path


def _relation_name(item) -> str | None:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for key in ("predicate", "type", "relation"):
            value = item.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, dict):
                return _relation_name(value)
        if isinstance(item.get("before"), dict):
            return _relation_name(item["before"])
    return None


def _parse_line(row, base: Path, check_files: bool) -> tuple[Pair | None, list[str]]:
    if not isinstance(row, dict):
        return None, [f"expected a JSON object, got {type(row).__name__}"]
    problems = []
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        problems.append("'prompt' must be a non-empty string" if "prompt" in row else "missing 'prompt'")
    images = image_paths(row, ("chosen", "rejected"), base, check_files, problems)
    if len(images) == 2 and images["chosen"] == images["rejected"]:
        problems.append("'chosen' and 'rejected' are the same image")
    count = row.get("perturbations")
    if isinstance(count, list):  # some writers store the changes themselves under this name
        count = len(count)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        problems.append(f"'perturbations' must be a whole number >= 1, got {count!r}")
    split = row.get("split")
    if split is not None and not isinstance(split, str):
        problems.append(f"'split' must be a string, got {split!r}")
    relations: list[str] = []
    for key in RELATION_KEYS:
        if isinstance(row.get(key), list):
            relations = [r for r in map(_relation_name, row[key]) if r]
            break
    if problems:
        return None, problems
    layouts = (scene_word_centres(row.get("scene")), scene_word_centres(row.get("perturbed_scene")))
    # A row has layouts when both pictures come with a scene; a scene may ground no word at all (its object
    # missing, or two objects of one colour), and then that picture simply has no grounding targets.
    has_scenes = all(_has_objects(row.get(k)) for k in ("scene", "perturbed_scene"))
    return Pair(prompt=prompt, chosen=images["chosen"], rejected=images["rejected"], perturbations=count,
                relations=tuple(relations), split=split, id=str(row.get("id", "")), line=0,
                layouts=layouts if has_scenes and any(layouts) else None), []


def image_paths(row: dict, keys: tuple[str, ...], base: Path, check_files: bool, problems: list[str]) -> dict[str, Path]:
    """The image paths of a pairs line under `keys` (relative ones taken from the file's folder); what is wrong with
    each (not a string, a folder, not found when `check_files`) goes to `problems`."""
    paths = {}
    for key in keys:
        value = row.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"'{key}' must be an image path (string)" if key in row else f"missing '{key}'")
            continue
        p = Path(value)
        p = p if p.is_absolute() else base / p
        if check_files and p.is_dir():
            problems.append(f"'{key}' is a folder, not an image file: {p}")
        elif check_files and not p.is_file():
            problems.append(f"'{key}' image not found: {p}")
        paths[key] = p
    return paths


def _has_objects(scene) -> bool:
    return isinstance(scene, dict) and isinstance(scene.get("objects"), list)


def scene_word_centres(scene) -> tuple[tuple[str, float, float], ...]:
    """(word, x, y) for every colour or category word that names exactly one object of a scene graph (its box
    centre); () when the row has no usable scene."""
    if not isinstance(scene, dict) or not isinstance(scene.get("objects"), list):
        return ()
    named: dict[str, list[tuple[float, float]]] = {}
    for obj in scene["objects"]:
        box = obj.get("box") if isinstance(obj, dict) else None
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            return ()
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        for key in ("color", "category"):
            if isinstance(obj.get(key), str):
                named.setdefault(obj[key].lower(), []).append(centre)
    return tuple(sorted((w, c[0][0], c[0][1]) for w, c in named.items() if len(c) == 1))


def read_pairs(path: str | os.PathLike, split: str | None = None, check_files: bool = True,
               reviews: str = "default") -> list[Pair]:
    """All pairs of a dataset folder or pairs JSONL (only `split` if given); raises PairsFileError.

    split "all" or None keeps every row. Blank lines are ignored. Image files are checked to exist. `reviews`:
    how human verdicts apply (see the module docstring).
    """
    file = pairs_file(path)
    pairs = read_rows(file, lambda row, base: _parse_line(row, base, check_files), "pairs file",
                      "prompt, chosen, rejected")
    return select_split(apply_reviews(pairs, file, reviews), split, file)


def read_rows(file: Path, parse, what: str, fields: str) -> list:
    """Every pair of a JSON-lines file: `parse(row, folder)` -> (pair or None, problems), the pair given its line
    number. Blank lines are ignored; every bad line of the `what` is reported at once, in one PairsFileError."""
    pairs, errors = [], []
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PairsFileError(f"{file}: not UTF-8 text ({exc}); expected JSON lines") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        pair, problems = parse(row, file.parent)
        errors.extend(f"line {number}: {p}" for p in problems)
        if pair is not None:
            pairs.append(replace(pair, line=number))
    if errors:
        shown = errors[:MAX_REPORTED]
        more = f"\n  ... and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise PairsFileError(f"{file}: {len(errors)} problem(s) in the {what}:\n  " + "\n  ".join(shown) + more)
    if not pairs:
        raise PairsFileError(f"{file}: no pairs (expected JSON lines with {fields})")
    return pairs


def select_split(pairs: list, split: str | None, file: Path) -> list:
    """The pairs of `split` ("all" or None: every pair); none there is a PairsFileError naming the splits present."""
    if split and split != "all":
        found = sorted({p.split for p in pairs if p.split})
        pairs = [p for p in pairs if p.split == split]
        if not pairs:
            where = f"splits present: {', '.join(found)}" if found else "its rows have no 'split' field"
            raise PairsFileError(f"{file}: no pairs in split {split!r} ({where})")
    return pairs


def apply_reviews(pairs: list[Pair], file: Path, mode: str) -> list[Pair]:
    """Drop rejected pairs, exchange the images of swapped ones; "reviewed-only" keeps accepted and swapped only."""
    if mode not in REVIEW_MODES:
        raise PairsFileError(f"reviews must be one of {', '.join(REVIEW_MODES)}, got {mode!r}")
    if mode == "ignore":
        return pairs
    from ...dataset.review.store import REVIEWS, read_verdicts

    verdicts = read_verdicts(file.parent)
    if verdicts is None:
        if mode == "reviewed-only":
            raise PairsFileError(f"reviewed-only: {file.parent} has no {REVIEWS}; review the pairs first with "
                                 f"`python -m training.dataset review {file.parent}`")
        return pairs
    kept = []
    for pair in pairs:
        verdict = verdicts.get(pair.id) if pair.id else None
        if verdict == "reject" or (mode == "reviewed-only" and verdict not in ("accept", "swap")):
            continue
        if verdict == "swap":  # the scene layouts belong to the prompts, not to the exchanged images: drop them
            pair = replace(pair, chosen=pair.rejected, rejected=pair.chosen, layouts=None)
        kept.append(pair)
    if not kept:
        raise PairsFileError(f"{file}: no pairs left after the human reviews in {file.parent / REVIEWS} "
                             f"({'only accepted or swapped pairs are kept' if mode == 'reviewed-only' else 'all rejected'})")
    return kept


def splits_of(pairs: list[Pair]) -> set[str]:
    return {p.split for p in pairs if p.split}


def fingerprint(pairs: list[Pair]) -> str:
    """A short hash of the pairs' content and order: a resumed run must see the same data."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(f"{p.prompt}\0{p.chosen}\0{p.rejected}\0{p.perturbations}\n".encode())
    return h.hexdigest()[:16]


def load_pair_images(pair: Pair):
    """(chosen, rejected) as RGB PIL images; a broken file names itself and its line."""
    from ...common.images import ImageInputError, load_image_file

    try:
        return load_image_file(str(pair.chosen)), load_image_file(str(pair.rejected))
    except ImageInputError as exc:
        raise PairsFileError(f"pair on line {pair.line}: {exc}") from exc


def check_images(pairs: list[Pair], progress: bool = True) -> int:
    """Open every image of `pairs` once (PIL's verify: structure and checksums, no decoding) and raise one
    PairsFileError naming every unreadable image and its line; returns the number of images checked."""
    from PIL import Image
    from tqdm import tqdm

    from ...common.images import why_not_a_file

    first_line: dict[str, int] = {}
    for pair in pairs:
        for path in map(str, pair.image_files):  # chosen and rejected (and an edit pair's source)
            first_line.setdefault(path, pair.line)
    bad = []
    for path, line in tqdm(sorted(first_line.items(), key=lambda item: item[1]), desc="checking images", unit="image", leave=False,
                           disable=not progress or len(first_line) < 2000):
        if not Path(path).is_file():
            bad.append(f"{path} (line {line}): {why_not_a_file(Path(path))}")
            continue
        try:
            with Image.open(path) as img:
                img.verify()
        except Exception as exc:  # PIL raises many types for corrupt files
            bad.append(f"{path} (line {line}): {exc}")
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise PairsFileError(f"{len(bad)} of {len(first_line)} training images are unreadable, nothing was "
                             f"trained: {shown}")
    return len(first_line)

