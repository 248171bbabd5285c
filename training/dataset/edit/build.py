"""`python -m training.dataset build --world shapes-edit`: a folder of edit pairs, resumable after a kill.

Candidate i is a pure function of (seed, i): its own source scene, instruction, correct edit and one mistake.
Candidates are visited in order and the build stops at the first N whose correct edit the pixel oracle accepts and
whose mistaken edit it rejects (on exact renders nearly all are), so the result does not depend on kills or
restarts. Images are written under temporary names and renamed; a row is appended only after its three images
exist; on restart a torn last line is cut off and rows whose images exist are kept.

One manifest row per pair:
    id, instruction, source, chosen, rejected   (image paths relative to the folder)
    edit_kind       move / recolor / remove / add
    mistake         wrong_direction / wrong_object / over_edit / no_change / partial (what is wrong with rejected)
    edit_region     boxes [x0, y0, x1, y1] in 0..1 where the correct edit changed the source
    rejected_region boxes where the mistaken edit changed the source ([] for no_change)
    split           train / val / test
    scenes          the source, chosen and rejected layouts (colour, shape, box)
    oracle          the pixel oracle's reasons for rejecting the mistaken edit
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import Counter
from pathlib import Path

from PIL import Image

from ...common.atomic import atomic_path, write_json
from ..build import BuildError, exclusive_lock, prepare_out, remove_temp_files
from ..manifest import BUILD_JSON, MANIFEST, JsonlAppender, read_jsonl, report_problems
from . import WORLD
from .edits import MISTAKES, sample_example
from .oracle import judge_edit
from .scene import changed_regions, render, scene_to_json

REQUIRED = ("id", "instruction", "source", "chosen", "rejected", "edit_kind", "mistake", "edit_region", "split")
FORMAT = 1


def _identity(seed: int, size: int, splits) -> dict:
    return {"world": WORLD, "seed": seed, "image_size": size, "splits": list(splits), "format": FORMAT}


def _split(seed: int, index: int, splits) -> str:
    u = int(hashlib.sha256(f"{seed}:{index}:split".encode()).hexdigest()[:8], 16) / 2**32
    return "train" if u < splits[0] else "val" if u < splits[0] + splits[1] else "test"


def _save(image: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def make_row(seed: int, index: int, size: int, splits, out: Path) -> tuple[dict | None, str]:
    """Candidate `index`: its row (images written) when the oracle confirms it, else (None, why)."""
    rng = random.Random(f"shapes-edit:{seed}:{index}")
    mistake = MISTAKES[index % len(MISTAKES)] if rng.random() < 0.5 else None  # half balanced, half drawn
    ex = sample_example(rng, mistake)
    images = {k: render(s, size) for k, s in (("source", ex.source), ("chosen", ex.chosen),
                                               ("rejected", ex.rejected))}
    good = judge_edit(ex.instruction, images["source"], images["chosen"])
    bad = judge_edit(ex.instruction, images["source"], images["rejected"])
    if not good.followed:
        return None, "correct edit not confirmed: " + "; ".join(good.problems + good.other_changes)
    if bad.followed:
        return None, f"{ex.mistake} edit passed the oracle"
    pid = f"e{index:07d}"
    rel = {k: f"images/{index // 1000:04d}/{pid}_{k}.png" for k in images}
    for k, im in images.items():
        _save(im, out / rel[k])
    return {
        "id": pid, "instruction": ex.instruction.text, **rel, "edit_kind": ex.instruction.kind,
        "mistake": ex.mistake, "edit_region": changed_regions(ex.source, ex.chosen),
        "rejected_region": changed_regions(ex.source, ex.rejected), "split": _split(seed, index, splits),
        "scenes": {k: scene_to_json(s) for k, s in (("source", ex.source), ("chosen", ex.chosen),
                                                     ("rejected", ex.rejected))},
        "oracle": {"rejected": bad.problems + bad.other_changes},
    }, ""


def _check_identity(out: Path, ident: dict) -> None:
    import json

    path = out / BUILD_JSON
    if path.exists():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))["identity"]
        except (ValueError, KeyError, TypeError) as exc:
            raise BuildError(f"{path} is unreadable ({exc}); delete the folder or choose another --out") from exc
        diff = [k for k in ident if before.get(k) != ident[k]]
        if diff and (out / MANIFEST).exists() and (out / MANIFEST).stat().st_size:
            detail = "; ".join(f"{k}: was {before.get(k)!r}, now {ident[k]!r}" for k in diff)
            raise BuildError(f"{out} was built with other settings ({detail}); rerun with the same arguments to "
                             "resume, or choose a new --out")
    write_json(path, {"identity": ident, "format": 1})


def build_edit(out: Path, pairs: int, seed: int = 0, size: int = 64, splits=(0.8, 0.1, 0.1),
               progress: bool = True, log=print) -> dict:
    """Build (or resume) a shapes-edit folder of `pairs` pairs; returns its summary."""
    from tqdm import tqdm

    if pairs < 1:
        raise BuildError(f"--pairs must be >= 1, got {pairs}")
    if size < 32:
        raise BuildError(f"--size must be at least 32 pixels for the shapes-edit world, got {size}")
    start = time.time()
    out = Path(out)
    prepare_out(out)
    with exclusive_lock(out):
        _check_identity(out, _identity(seed, size, splits))
        remove_temp_files(out)
        read = read_jsonl(out / MANIFEST, REQUIRED)
        report_problems(out / MANIFEST, read.problems)
        done = {r["id"]: r for r in read.rows
                if all((out / r[k]).is_file() for k in ("source", "chosen", "rejected"))}
        resumed, dropped, index = len(done), 0, 0
        bar = tqdm(total=pairs, initial=min(pairs, len(done)), disable=not progress, desc="shapes-edit pairs",
                   unit="pair")
        with JsonlAppender(out / MANIFEST, read.good_bytes) as rows_file:
            accepted = 0
            while accepted < pairs:
                if index > 20 * pairs + 100:
                    raise BuildError(f"only {accepted} of {pairs} candidates passed the oracle")
                pid = f"e{index:07d}"
                if pid in done:
                    accepted += 1
                else:
                    row, why = make_row(seed, index, size, splits, out)
                    if row is None:
                        dropped += 1
                    else:
                        rows_file.append([row])
                        done[pid] = row
                        accepted += 1
                        bar.update(1)
                index += 1
        bar.close()
        rows = sorted(done.values(), key=lambda r: r["id"])[:pairs]
        text = "".join(__import__("json").dumps(r, separators=(",", ":")) + "\n" for r in rows)
        if (out / MANIFEST).read_text(encoding="utf-8") != text:
            with atomic_path(out / MANIFEST) as tmp:
                tmp.write_text(text, encoding="utf-8")
    summary = summarize(rows)
    summary.update(out=str(out), resumed=resumed, dropped=dropped, seconds=round(time.time() - start, 2),
                   complete=True)
    return summary


def summarize(rows: list[dict]) -> dict:
    return {"pairs": len(rows), "by_split": dict(Counter(r["split"] for r in rows)),
            "by_edit_kind": dict(sorted(Counter(r["edit_kind"] for r in rows).items())),
            "by_mistake": dict(sorted(Counter(r["mistake"] for r in rows).items()))}


def format_summary(summary: dict) -> str:
    lines = [f"dataset: {summary['out']}", f"pairs: {summary['pairs']} (resumed {summary['resumed']}, "
             f"dropped by the oracle {summary['dropped']}, {summary['seconds']} s)"]
    for key in ("by_split", "by_edit_kind", "by_mistake"):
        lines.append(f"{key.replace('_', ' ')}: " + ", ".join(f"{k} {v}" for k, v in summary[key].items()))
    return "\n".join(lines)
