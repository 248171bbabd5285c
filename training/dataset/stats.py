"""`stats DIR`: summarise a dataset folder; with `oracle=True`, re-judge every shapes pair from its image files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tqdm import tqdm

from .manifest import DROPPED, MANIFEST, REQUIRED_KEYS, ManifestError, read_jsonl, report_problems
from .oracle import find_objects, judge_objects, parse_prompt
from .review.store import read_verdicts, review_counts
from .summary import summarize


def recheck_oracle(folder: Path, rows: list[dict], progress: bool = True) -> dict:
    """Judge each shapes pair again from disk: chosen vs prompt, rejected vs prompt (fails exactly the changed
    relations, keeps the rest). Uses the plain form stored with each row."""
    from training.common.images import ImageInputError

    counts = Counter()
    unreadable = []
    for row in tqdm(rows, desc="oracle", unit="pair", disable=not progress):
        if row.get("world") != "shapes":
            continue
        prompt = parse_prompt(row.get("plain_prompt", row["prompt"]))
        colors = sorted({c for r in prompt for c in (r.subject[0], r.object[0])})
        try:  # an unreadable image is reported with the others and its pair skipped, not the end of the check
            chosen = find_objects(folder / row["chosen"], colors)
            rejected = find_objects(folder / row["rejected"], colors)
        except ImageInputError as exc:
            unreadable.append(f"{row['id']}: {exc}")
            continue
        counts["checked"] += 1
        counts["chosen_confirmed"] += judge_objects(chosen, prompt).all
        holds = judge_objects(rejected, prompt).holds
        changed = {c["index"] for c in row.get("changed", [])}
        counts["rejected_fail_prompt"] += not all(holds)
        counts["rejected_exact"] += all((i in changed) != h for i, h in enumerate(holds))
    result = {k: counts[k] for k in ("checked", "chosen_confirmed", "rejected_fail_prompt", "rejected_exact")}
    result["skipped_unreadable"] = len(unreadable)
    result["unreadable"] = unreadable
    return result


def dataset_stats(folder: str | Path, oracle: bool = False, progress: bool = True) -> dict:
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise ManifestError(f"no {MANIFEST} in {folder} (is it a dataset folder written by "
                            "`python -m training.dataset build`?)")
    read = read_jsonl(folder / MANIFEST, REQUIRED_KEYS)
    report_problems(folder / MANIFEST, read.problems)
    dropped = read_jsonl(folder / DROPPED)
    report_problems(folder / DROPPED, dropped.problems)
    summary = summarize(read.rows, dropped.rows)
    summary["bad_lines"] = [n for n, _ in read.problems]
    verdicts = read_verdicts(folder)  # human verdicts from `python -m training.dataset review`
    if verdicts is not None:
        summary["reviews"] = review_counts(verdicts, [r["id"] for r in read.rows])
        splits = sorted({str(r.get("split")) for r in read.rows})
        summary["reviews_by_split"] = {s: review_counts(verdicts, [r["id"] for r in read.rows if str(r.get("split")) == s])
                                       for s in splits}
    if oracle:
        summary["oracle_recheck"] = recheck_oracle(folder, read.rows, progress)
    return summary
