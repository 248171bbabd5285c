"""Replaying pruning schedules on a traced full best-of-N run, judged by the shapes pixel oracle (the library of
`python -m training.bestofn.measure`, whose command line is cli/measure.py).

A traced `--prune none --keep N` run holds every candidate's x0 score after every step and every finished image.
A pruned run's decisions depend only on those scores (the Pruner below is the one the sampler uses), and its
survivors finish as the very same images (tests/bestofn/test_prune_none.py), so replaying a schedule on the trace
gives that schedule's top-1 pick without sampling again. Best-of-M for M < N is the first M candidates (candidate
i's noise depends only on the prompt seed and i). Forwards are the exact count (`schedule.forwards`). Wall time is
not replayed: measure it with real runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from .pruning import Pruner
from .schedule import forwards, resolve_schedule


def load_run(run: Path) -> tuple[dict, dict[tuple[int, int], str]]:
    """(report, {(prompt index, candidate): image path}) of a traced --prune none --keep N run."""
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    if not report.get("trace") or report.get("prune") != "none" or report.get("keep") != report.get("n"):
        raise ValueError(f"{run}: not a traced full run (needs --prune none --keep N --trace)")
    index = {r["prompt"]: r["index"] for r in report["per_prompt"]}
    images = {}
    for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        images[(index[row["prompt"]], row["candidate"])] = str(run / row["image"])
    return report, images


def replay(trace: dict[str, list[float]], m: int, schedule: str | None, steps: int) -> int:
    """The top-1 candidate of best-of-m pruned by `schedule`, decided on the traced x0 scores."""
    pruner = Pruner(m, resolve_schedule(schedule, m, 1, steps), steps)
    for step in range(1, steps):
        if pruner.wants_scores(step):
            pruner.after_step(step, [trace[str(c)][step - 1] for c in pruner.alive])
    return pruner.final([trace[str(c)][steps - 1] for c in pruner.alive], 1)[0][1]


def measure(run: Path, configs: list[tuple[int, str]]) -> dict:
    from PIL import Image

    from training.grpo.oracle_judge import oracle_figures, oracle_verdicts

    report, images = load_run(run)
    steps, n = report["settings"]["num_steps"], report["n"]
    records = report["per_prompt"]
    verdict_cache: dict[tuple[int, int], dict] = {}

    def verdict(index: int, prompt: str, candidate: int) -> dict:
        if (index, candidate) not in verdict_cache:
            with Image.open(images[(index, candidate)]) as im:
                verdict_cache[(index, candidate)] = oracle_verdicts([im.convert("RGB")], [prompt])[0]
        return verdict_cache[(index, candidate)]

    rows = []
    for m, schedule in configs:
        if m > n:
            raise ValueError(f"--n {m}: the run has only {n} candidates per prompt")
        stages = resolve_schedule(schedule, m, 1, steps)
        picks = [replay(r["trace"], m, schedule, steps) for r in records]
        figures = oracle_figures([verdict(r["index"], r["prompt"], c) for r, c in zip(records, picks, strict=True)])
        rows.append({"n": m, "schedule": schedule or "none", "forwards_per_prompt": forwards(m, stages, steps),
                     "oracle_all_ok": figures["oracle_all_ok"], "oracle_relation_ok": figures["oracle_relation_ok"],
                     "oracle_objects_ok": figures["oracle_objects_ok"], "prompts": len(records)})  # fmt: skip
    return {"run": str(run), "steps": steps, "n": n, "prompts": len(records),
            "rank_correlation_by_step": report.get("rank_correlation_by_step"), "rows": rows}  # fmt: skip


def markdown(result: dict) -> str:
    full = {r["n"]: r for r in result["rows"] if r["schedule"] == "none"}
    top = full.get(result["n"])
    lines = ["| configuration | top-1 oracle all-relations | forwards / prompt | vs full best-of-N |",
             "|---|---|---|---|"]
    for r in result["rows"]:
        name = f"best-of-{r['n']}, " + ("full" if r["schedule"] == "none" else f"`{r['schedule']}`")
        rel = f" ({100 * r['oracle_all_ok'] / top['oracle_all_ok']:.0f}% of full best-of-{top['n']})" \
            if top and top["oracle_all_ok"] and r is not top and r["n"] == top["n"] else ""
        share = f"{100 * r['forwards_per_prompt'] / top['forwards_per_prompt']:.0f}%" if top else "-"
        lines.append(f"| {name} | {100 * r['oracle_all_ok']:.1f}%{rel} | {r['forwards_per_prompt']} | {share} |")
    return "\n".join(lines)
