"""Build a SpatialReward dataset folder: plan pairs, make images, verify, append rows; resumable after a kill.

Order of work: candidates (scene i, pair k) are visited in a fixed order and the build stops at the first N
accepted ones, so the result does not depend on chunking, kills or restarts. Images are written under temp
names and renamed, rows are appended only after their images exist, and on restart every row whose images
are present is kept, torn or corrupt lines are reported and dropped, temp files and images no row refers to are
removed. The finished manifest is rewritten (atomically) in canonical order if it is not already.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..common import run_folder
from ..common.atomic import atomic_path, is_temp_name, write_json, write_text
from .config import BuildConfig
from .manifest import (
    BUILD_JSON,
    DROPPED,
    MANIFEST,
    REQUIRED_KEYS,
    JsonlAppender,
    dumps_row,
    iter_jsonl,
    read_jsonl,
    report_problems,
)
from .plan import pair_id, parse_pair_id, plan_scene
from .summary import summarize
from .worker import ChunkWorker

IMAGE_NAME = re.compile(r"^s\d{7}(-p\d+_r|_c)[0-9a-f]{12}\.png$")
WRITE_PROBE = ".write-test-"  # + pid: prepare_out's check that the folder takes files


class BuildError(RuntimeError):
    """A build that cannot start: unwritable folder, a folder of something else, settings that differ."""


def prepare_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot create output folder {out}: {exc.strerror or exc}") from exc
    if not out.is_dir():
        raise BuildError(f"output path {out} exists and is not a folder")
    probe = out / f"{WRITE_PROBE}{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink(missing_ok=True)  # a concurrent build may have swept it as a leftover
    except OSError as exc:
        raise BuildError(f"output folder {out} is not writable: {exc.strerror or exc}") from exc
    if (out / BUILD_JSON).exists():
        return  # one of ours: resumed (its identity is checked under the lock)
    # Without build.json nothing here is ours (build.json is written before any image): images/ or dot-entries
    # count as content, or a resume would delete the user's .tmp files and unreferenced PNGs.
    # A build killed while writing build.json itself, or between writing and removing its write probe, leaves only
    # that temp file or probe: still an empty folder of ours.
    foreign = [p.name for p in out.iterdir()
               if p.name != ".lock" and not p.name.startswith(WRITE_PROBE) and not is_temp_name(p.name, BUILD_JSON)]
    if foreign:
        raise BuildError(f"output folder {out} is not empty and is not a dataset folder (no {BUILD_JSON}; found "
                         f"{', '.join(sorted(foreign)[:5])}); choose a new or empty folder")


def exclusive_lock(out: Path):
    """One build per folder at a time: a second one fails at once instead of interleaving rows."""
    return run_folder.exclusive_lock(out, "build", BuildError)


def check_identity(out: Path, cfg: BuildConfig) -> None:
    path = out / BUILD_JSON
    ident = cfg.identity()
    if path.exists():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))["identity"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BuildError(f"{path} is unreadable ({exc}); delete the folder or choose another --out") from exc
        diff = [k for k in ident if before.get(k) != ident[k]]
        started = any((out / name).exists() and (out / name).stat().st_size > 0 for name in (MANIFEST, DROPPED))
        if diff and not started and not any((out / "images").rglob("*.png")):
            write_json(path, {"identity": ident, "format": 1})  # nothing made yet: new settings are fine
            return
        if diff:
            detail = "; ".join(f"{k}: was {before.get(k)!r}, now {ident[k]!r}" for k in diff)
            raise BuildError(f"{out} was built with other settings ({detail}); rerun with the same arguments to "
                             "resume, or choose a new --out")
        return
    write_json(path, {"identity": ident, "format": 1})


def remove_temp_files(out: Path) -> int:
    n = 0
    for p in [*out.rglob(".*.tmp"), *out.glob(f"{WRITE_PROBE}*")]:
        p.unlink(missing_ok=True)
        n += 1
    return n


@dataclass
class Done:
    """Finished pairs, kept as their manifest lines (a parsed 80k-row manifest would take gigabytes)."""

    lines: dict[str, bytes] = field(default_factory=dict)  # id -> JSON line, no newline
    images: set[str] = field(default_factory=set)  # image paths (relative to DIR) the rows refer to

    def add(self, row: dict, line: bytes | None = None) -> None:
        self.lines[row["id"]] = line if line is not None else dumps_row(row).encode("utf-8")
        self.images.update(os.path.normpath(row[k]) for k in ("chosen", "rejected"))

    def __contains__(self, pid: str) -> bool:
        return pid in self.lines

    def __len__(self) -> int:
        return len(self.lines)

    def ordered_ids(self) -> list[str]:
        return sorted(self.lines, key=parse_pair_id)

    def rows(self):
        for pid in self.ordered_ids():
            yield json.loads(self.lines[pid])


def load_done(out: Path, log) -> tuple[Done, list[dict], int, int]:
    """Valid rows whose images exist, dropped candidates, and where each file's good part ends."""
    done = Done()
    good = 0
    if (out / MANIFEST).exists():
        good = (out / MANIFEST).stat().st_size
    for line, row, raw, problem in iter_jsonl(out / MANIFEST, REQUIRED_KEYS):
        where = f"{out / MANIFEST}:{line}"
        if problem is not None:
            log(f"warning: {where}: {problem}; skipped")
            if not raw.endswith(b"\n"):
                good -= len(raw)
            continue
        try:
            parse_pair_id(row["id"])
        except ValueError as exc:
            log(f"warning: {where}: {exc}; skipped")
            continue
        if row["id"] in done:
            log(f"warning: {where}: duplicate row {row['id']}; skipped")
            continue
        missing = [row[k] for k in ("chosen", "rejected") if not _nonempty(out / row[k])]
        if missing:
            log(f"warning: {where}: image(s) missing: {', '.join(missing)}; pair will be remade")
            continue
        broken = [row[k] for k in ("chosen", "rejected") if not whole_png(out / row[k])]
        if broken:
            log(f"warning: {where}: image(s) corrupt or truncated: {', '.join(broken)}; pair will be remade")
            continue
        done.add(row, raw.rstrip(b"\n"))
    dropped_read = read_jsonl(out / DROPPED)
    report_problems(out / DROPPED, dropped_read.problems)
    dropped = [r for r in dropped_read.rows if r["id"] not in done]
    return done, dropped, good, dropped_read.good_bytes


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def whole_png(path: Path) -> bool:
    """A PNG that starts with the signature and ends with the IEND chunk: catches truncated, emptied and
    overwritten files at the cost of reading 20 bytes (a full decode of every image would make resuming an
    80k-pair folder take minutes). A flipped bit inside is not caught; `stats --oracle` decodes every image."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(-len(PNG_END), os.SEEK_END)
            return head == PNG_SIGNATURE and f.read() == PNG_END
    except OSError:
        return False


def _order_key(row: dict) -> tuple[int, int]:
    return parse_pair_id(row["id"])


def finalize(out: Path, done: Done, dropped_rows: list[dict]) -> None:
    """Canonical manifest (sorted, no bad lines) and ledger, then delete images no row refers to."""
    data = b"".join(done.lines[pid] + b"\n" for pid in done.ordered_ids())
    path = out / MANIFEST
    if not path.exists() or path.read_bytes() != data:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    seen: dict[str, dict] = {}
    for r in dropped_rows:
        seen.setdefault(r["id"], r)
    drop_text = "".join(dumps_row(r) + "\n" for r in sorted(seen.values(), key=_order_key))
    dpath = out / DROPPED
    if not drop_text:
        dpath.unlink(missing_ok=True)
    elif not dpath.exists() or dpath.read_bytes() != drop_text.encode("utf-8"):
        write_text(dpath, drop_text)
    images = out / "images"
    if images.is_dir():
        for p in images.rglob("*.png"):
            rel = os.path.normpath(p.relative_to(out).as_posix())
            if rel not in done.images and IMAGE_NAME.match(p.name):
                p.unlink()
        for d in sorted((d for d in images.rglob("*") if d.is_dir()), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()  # only succeeds when empty


def build(cfg: BuildConfig, log=print, load_scorer=None) -> dict:
    """Build (or resume) the dataset described by `cfg`; returns the summary of the finished folder.

    summary["complete"] is False when fewer than `cfg.pairs` candidates passed verification within
    `cfg.max_candidates` (rerun with a larger budget to go on). `load_scorer(name, device=...)` loads
    cfg.verify_scorer (the dataset stage is below the reward's: its caller hands it training.reward.load_scorer)."""
    start = time.time()
    out = cfg.out
    if cfg.verify_scorer and load_scorer is None:
        raise BuildError(f"verify_scorer {cfg.verify_scorer!r} needs load_scorer= (e.g. training.reward.load_scorer, "
                         "which `python -m training.dataset build --verify-scorer` passes)")
    if cfg.generators:
        from .generators import check_generator_folder

        for g in cfg.generators:
            check_generator_folder(g)  # fail before touching the output folder
    prepare_out(out)
    with exclusive_lock(out):
        check_identity(out, cfg)
        remove_temp_files(out)
        done, dropped_rows, good, dropped_good = load_done(out, log)
        if len(done) > cfg.pairs:
            raise BuildError(f"{out} already holds {len(done)} pairs, more than --pairs {cfg.pairs}; nothing was "
                             f"removed: rerun with --pairs {len(done)} or more, or choose a new --out (training "
                             "can take fewer pairs with data.val_pairs / a pairs file)")
        dropped = {r["id"] for r in dropped_rows}
        resumed = len(done)
        worker = ChunkWorker(cfg, out, log, load_scorer)
        try:
            with JsonlAppender(out / MANIFEST, good) as rows_file, JsonlAppender(out / DROPPED, dropped_good) as drops:
                worker.open_progress(total=cfg.pairs, initial=min(len(done), cfg.pairs))
                accepted, position, exhausted = 0, 0, False
                plans: dict[int, object] = {}
                while accepted < cfg.pairs and not exhausted:
                    chunk = []  # the next candidates in order, as many as could still be needed
                    while accepted + len(chunk) < cfg.pairs and len(chunk) < cfg.chunk_pairs:
                        if position >= cfg.max_candidates:
                            exhausted = True
                            break
                        index, k = divmod(position, cfg.pairs_per_scene)
                        pid = pair_id(index, k)
                        if pid in done:
                            accepted += 1
                        elif pid not in dropped:
                            if index not in plans:
                                plans = {index: plan_scene(cfg, index)}  # one scene's plan at a time
                            chunk.append((plans[index], plans[index].pairs[k]))
                        position += 1
                    if not chunk:
                        continue
                    rows, drop_rows = worker.run(chunk)
                    rows_file.append(rows)
                    drops.append(drop_rows)
                    for r in rows:
                        done.add(r)
                    dropped.update(r["id"] for r in drop_rows)
                    dropped_rows.extend(drop_rows)
                    accepted += len(rows)
        finally:
            worker.close()
        finalize(out, done, dropped_rows)
    summary = summarize(done.rows(), dropped_rows)
    summary.update(complete=accepted >= cfg.pairs, resumed=resumed, seconds=round(time.time() - start, 2),
                   out=str(out))
    if not summary["complete"]:
        log(f"warning: only {accepted} of {cfg.pairs} pairs passed verification among the first "
            f"{cfg.max_candidates} candidates ({len(dropped)} dropped, see {out / DROPPED}); rerun with a larger "
            "max_candidates to go on, or check the generators / verification settings")
    return summary
