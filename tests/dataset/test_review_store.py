"""The verdict store (DIR/reviews.jsonl): append-only, safe with concurrent writers, tolerant of a torn line."""

from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest

from training.dataset.review.store import (
    REVIEWS,
    ReviewError,
    ReviewFileError,
    VerdictStore,
    read_verdicts,
    review_counts,
)


def lines(folder):
    return (folder / REVIEWS).read_bytes().decode().splitlines()


def test_a_verdict_is_one_line_with_id_verdict_time_and_reviewer(tmp_path):
    store = VerdictStore(tmp_path)
    store.append("p1", "accept", reviewer="ana")
    store.append("p2", "reject")
    first, second = (json.loads(x) for x in lines(tmp_path))
    assert first["id"] == "p1" and first["verdict"] == "accept" and first["reviewer"] == "ana"
    assert first["time"].endswith("Z") and first["time"][:4].isdigit()
    assert "reviewer" not in second
    assert oct((tmp_path / REVIEWS).stat().st_mode & 0o777) == oct(0o644 & ~_umask())
    assert read_verdicts(tmp_path, warn=False) == {"p1": "accept", "p2": "reject"}


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_unknown_verdicts_are_refused(tmp_path):
    store = VerdictStore(tmp_path)
    with pytest.raises(ReviewError, match="unknown verdict 'maybe'"):
        store.append("p1", "maybe")
    with pytest.raises(ReviewError, match="row id"):
        store.append("", "accept")
    assert not (tmp_path / REVIEWS).exists()


def test_undo_pops_the_newest_verdict_of_that_row_and_keeps_every_line(tmp_path):
    store = VerdictStore(tmp_path)
    store.append("p1", "reject")
    store.append("p1", "accept")
    store.append("p2", "swap")
    store.append("p1", "undo")
    assert store.fold.verdict("p1") == "reject"  # back one step, not to nothing
    store.append("p1", "undo")
    assert store.fold.verdict("p1") is None
    store.append("p1", "undo")  # nothing left to undo: harmless
    assert store.fold.verdicts() == {"p2": "swap"}
    assert len(lines(tmp_path)) == 6  # append-only: the history stays
    assert VerdictStore(tmp_path).fold.verdicts() == {"p2": "swap"}  # a fresh reader folds the same


def test_a_reader_sees_what_another_writer_appended(tmp_path):
    reader, writer = VerdictStore(tmp_path), VerdictStore(tmp_path)
    writer.append("p1", "accept")
    writer.append("p2", "skip")
    assert reader.refresh().verdicts() == {"p1": "accept", "p2": "skip"}
    writer.append("p2", "reject")
    assert reader.refresh().verdicts() == {"p1": "accept", "p2": "reject"}


def test_a_torn_last_line_is_ignored_then_sealed_off_by_the_next_append(tmp_path):
    store = VerdictStore(tmp_path)
    store.append("p1", "accept")
    with open(tmp_path / REVIEWS, "ab") as f:  # what a server killed in the middle of a write leaves
        f.write(b'{"id":"p2","verdict":"rej')
    reread = VerdictStore(tmp_path)
    assert reread.fold.verdicts() == {"p1": "accept"}  # the torn tail is not a verdict (yet)
    reread.append("p3", "swap")
    assert lines(tmp_path)[1] == '{"id":"p2","verdict":"rej'  # kept, never rewritten, but on its own line
    fresh = VerdictStore(tmp_path)
    assert fresh.fold.verdicts() == {"p1": "accept", "p3": "swap"}
    assert fresh.fold.bad_lines == [2]
    assert reread.refresh().verdicts() == {"p1": "accept", "p3": "swap"}


def test_garbage_lines_are_skipped_and_reported(tmp_path, capsys):
    (tmp_path / REVIEWS).write_text('{"id":"p1","verdict":"accept","time":"t"}\nnot json\n[1]\n'
                                    '{"id":"p2","verdict":"perhaps"}\n{"id":"p3","verdict":"reject","time":"t"}\n')
    assert read_verdicts(tmp_path) == {"p1": "accept", "p3": "reject"}
    assert "skipped 3 line(s)" in capsys.readouterr().err


def test_no_reviews_file_means_none_not_empty(tmp_path):
    assert read_verdicts(tmp_path) is None
    assert review_counts(None, ["a", "b"]) == {"accept": 0, "reject": 0, "swap": 0, "skip": 0, "unreviewed": 2,
                                               "reviewed": 0}


def _hammer(folder: str, writer: int, count: int) -> None:
    store = VerdictStore(folder)
    for k in range(count):
        store.append(f"w{writer}-{k}", ("accept", "reject", "swap", "skip")[k % 4], reviewer=f"r{writer}" * 20)


def test_concurrent_appends_from_several_processes_lose_and_mix_nothing(tmp_path):
    writers, count = 4, 150
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), w, count)) for w in range(writers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    raw = lines(tmp_path)
    assert len(raw) == writers * count
    records = [json.loads(x) for x in raw]  # every line is whole JSON: no interleaving
    assert {r["id"] for r in records} == {f"w{w}-{k}" for w in range(writers) for k in range(count)}
    for w in range(writers):  # each writer's own lines keep their order
        mine = [int(r["id"].split("-")[1]) for r in records if r["id"].startswith(f"w{w}-")]
        assert mine == sorted(mine)
    verdicts = read_verdicts(tmp_path, warn=False)
    assert review_counts(verdicts, verdicts)["reviewed"] == writers * sum(k % 4 != 3 for k in range(count))


def test_a_reviews_file_that_is_a_link_is_refused_and_never_followed(tmp_path):
    foreign = tmp_path / "foreign.txt"
    foreign.write_bytes(b"not yours\n")
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / REVIEWS).symlink_to(foreign)
    with pytest.raises(ReviewFileError, match=r"reviews.jsonl is a symbolic link: verdicts are never written through "
                                              r"a link \(they would go into .*foreign.txt\)"):
        VerdictStore(folder)
    assert read_verdicts(folder, warn=False) == {}  # readers (stats, training) may still read through it
    # a link put there after the server started: the append refuses it (O_NOFOLLOW), the target is untouched
    (folder / REVIEWS).unlink()
    store = VerdictStore(folder)
    store.append("p1", "accept")
    (folder / REVIEWS).unlink()
    (folder / REVIEWS).symlink_to(foreign)
    with pytest.raises(ReviewFileError, match="is a symbolic link"):
        store.append("p2", "swap")
    assert foreign.read_bytes() == b"not yours\n"
    assert store.refresh().verdicts() == {"p1": "accept"}  # what it had read stays; the link is not read


def test_a_reviews_file_that_is_a_fifo_or_a_folder_is_refused_without_hanging(tmp_path):
    os.mkfifo(tmp_path / REVIEWS)
    with pytest.raises(ReviewFileError, match="is not a regular file"):
        VerdictStore(tmp_path)
    store_dir = tmp_path / "later"
    store_dir.mkdir()
    store = VerdictStore(store_dir)
    os.mkfifo(store_dir / REVIEWS)  # appeared after the start: neither a read nor an append waits on it
    assert store.refresh().verdicts() == {}
    with pytest.raises(ReviewFileError, match="is not a regular file"):
        store.append("p1", "accept")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / REVIEWS).mkdir()
    with pytest.raises(ReviewFileError, match="is not a regular file"):
        VerdictStore(tmp_path / "dir")
