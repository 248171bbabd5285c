"""The faster flow-RL methods side by side in the shapes world, on the same reward and the same CPU budget.

    python -m training.grpo.recipes.shapes_speed --minutes 15 --seeds 2 --out runs/shapes_speed

Each method is the `shapes` preset (python -m training.grpo --preset shapes) with a few settings changed (METHODS):
  flow_grpo         the preset as it is: Flow-GRPO, the SDE on all 6 steps, 5 of them trained
  window2           Flow-GRPO with SDE noise on steps 0-1 only, the ODE elsewhere, only those 2 steps trained
                    (train.timestep_window, sample.ode_outside_window: Flow-GRPO-Fast / MixGRPO's window)
  window2_cps       the same with coefficients-preserving sampling in the window (sample.sde_type cps)
  nft               DiffusionNFT (train.algorithm nft) on ODE samples (sample.deterministic), 5 sigmas trained
  awm               Advantage Weighted Matching (train.algorithm awm) on ODE samples, 5 sigmas trained
  shapes_fast       the `shapes_fast` preset as it ships (python -m training.grpo --preset shapes_fast)
Every run trains until its training phases (prompts, sampling, reward, training: the metrics' cpu_seconds, this
process's CPU time, summed over steps) have used `--minutes` (or its method's `--minutes-for METHOD=M`: the
forward-process methods peak within a few minutes); CPU time, not wall time, so runs that share the
machine (--jobs) are charged what they used. Evaluation is not counted and not run during training: a LoRA (the
EMA, as exported) is kept at steps 2, 4, 6, 8, 10, then every `--eval-every` steps and at the last step, and
afterwards judged by the pixel oracle on the held-out prompts (evaluate/oracle_rates.py: noise 0, each prompt's
noise fixed), so every point of a curve is the same picture set under another LoRA. Seeds change the LoRA's init,
the prompt order and every sample's noise. A learning-rate sweep is one study per value (--set
train.learning_rate=X, its own --out). Each (method, seed) runs in its own process with one torch thread; a run
killed before its end is started again, a finished one (steps.json) and its judged points (points.json) are kept.

Written to --out: runs/<method>/seed<k>/ (each run's folder), results.json (every point: step, training seconds,
(a) objects_ok, (c) all_ok, clean, (c) in a clean picture), curve.png ((c) and (c)-in-a-clean-picture against
training seconds, one line per seed) and table.md (per method: time to +20 points of (c) over the base generator,
best (c), best (c) in a clean picture, means over seeds; "not reached" where a seed never got there).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from ...common.atomic import write_json, write_text

METHODS = {  # method: (preset, overrides)
    "flow_grpo": ("shapes", {}),
    "window2": ("shapes", {"train.timestep_window": [0, 2], "sample.ode_outside_window": True}),
    "window2_cps": ("shapes", {"train.timestep_window": [0, 2], "sample.ode_outside_window": True,
                               "sample.sde_type": "cps"}),
    "nft": ("shapes", {"train.algorithm": "nft", "sample.deterministic": True}),
    "awm": ("shapes", {"train.algorithm": "awm", "sample.deterministic": True}),
    "shapes_fast": ("shapes_fast", {}),
}
DEFAULT_METHODS = ["flow_grpo", "window2", "window2_cps", "nft", "awm", "shapes_fast"]
EARLY_STEPS = (2, 4, 6, 8, 10)  # the fast methods' gains come early: judge them densely there
GAIN = 0.20  # the target: +20 points of (c) over the base generator
FIGURES = {"a": "oracle_objects_ok", "c": "oracle_all_ok", "clean": "oracle_clean", "clean_c": "oracle_clean_all_ok"}


class _BudgetSpent(Exception):
    pass


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_method(method: str, seed: int, out: Path, minutes: float, eval_every: int, train_prompts: Path | None,
               extra: dict) -> list[dict]:
    """Train one (method, seed) for `minutes` of training CPU time; returns its step records (with seconds)."""
    from ..config import load_config
    from ..trainer import train

    run_dir = out / "runs" / method / f"seed{seed}"
    if run_dir.exists():  # killed before its end: ours (inside --out), started again
        shutil.rmtree(run_dir)
    preset, changes = METHODS[method]
    overrides = {**changes, "train.seed": seed, "train.steps": 100000, "train.time_budget_minutes": 0.0,
                 "prompts.num_eval": 0, "output.dir": str(run_dir), "output.checkpoint_every": 1,
                 "output.keep_checkpoints": 2, "output.eval_every": 0, **extra}  # fmt: skip
    if train_prompts is not None:
        overrides["prompts.train_file"] = str(train_prompts)
    config = load_config(preset=preset, overrides=overrides)
    spent, records = 0.0, []

    def budget(record: dict) -> None:
        nonlocal spent
        spent += record["cpu_seconds"]
        records.append({"step": record["step"], "seconds": spent})
        last = spent >= 60 * minutes
        if last or record["step"] in EARLY_STEPS or record["step"] % eval_every == 0:
            # the step's checkpoint is written before the callback
            exported = run_dir / "checkpoints" / f"step_{record['step']:06d}" / "lora.safetensors"
            (run_dir / "loras").mkdir(exist_ok=True)
            shutil.copyfile(exported, run_dir / "loras" / f"step_{record['step']:06d}.safetensors")
        if last:
            raise _BudgetSpent

    try:
        train(config, callback=budget)
    except _BudgetSpent:
        pass
    write_json(run_dir / "steps.json", records)
    return records


def run_and_judge(method: str, seed: int, out: Path, minutes: float, eval_every: int, train_prompts: Path | None,
                  extra: dict, heldout: list[str], base: dict) -> list[dict]:
    """One (method, seed): its run (kept if finished), then every kept LoRA judged (kept in points.json)."""
    import torch

    torch.set_num_threads(1)
    run_dir = out / "runs" / method / f"seed{seed}"
    steps_file, points_file = run_dir / "steps.json", run_dir / "points.json"
    if points_file.is_file():
        return json.loads(points_file.read_text())
    records = (json.loads(steps_file.read_text()) if steps_file.is_file()
               else run_method(method, seed, out, minutes, eval_every, train_prompts, extra))
    seconds = {r["step"]: r["seconds"] for r in records}
    points = [{"step": 0, "seconds": 0.0, **base}]
    for step, lora in judged_loras(run_dir).items():
        points.append({"step": step, "seconds": seconds[step], **judge(lora, heldout)})
    write_json(points_file, points)
    return points


def judged_loras(run_dir: Path) -> dict[int, Path]:
    """The LoRAs (EMA, as exported) kept every eval_every steps and at the run's last step."""
    return {int(p.stem.split("_")[1]): p for p in sorted((run_dir / "loras").glob("step_*.safetensors"))}


def judge(lora: Path | None, prompts: list[str]) -> dict[str, float]:
    from ..evaluate.oracle_rates import judged_samples

    _, figures = judged_samples("shapes", str(lora) if lora else None, prompts)
    return {short: figures[key] for short, key in FIGURES.items()}


def first_gain(points: list[dict], base: float, gain: float = GAIN) -> dict | None:
    """The first judged point whose (c) is at least base + gain (None: never)."""
    return next((p for p in points if p["c"] >= base + gain - 1e-12), None)


def time_to_gain(points: list[dict], base: float, gain: float = GAIN) -> float | None:
    """Training seconds at the first point whose (c) is at least base + gain (None: never)."""
    point = first_gain(points, base, gain)
    return None if point is None else point["seconds"]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summarise(results: dict, base: dict, budgets: dict[str, float]) -> list[dict]:
    """Per method, means over seeds; the time, step and clean rate at the gain only when every seed got there."""
    rows = []
    for method, seeds in results.items():
        gains = [first_gain(points, base["c"]) for points in seeds.values()]
        reached = [g for g in gains if g is not None]
        every = len(reached) == len(gains)
        final = [points[-1] for points in seeds.values()]
        rows.append({
            "method": method, "seeds": len(seeds), "minutes": budgets[method], "reached": len(reached),
            "time_to_gain_s": _mean([g["seconds"] for g in reached]) if every else None,
            "steps_to_gain": _mean([g["step"] for g in reached]) if every else None,
            "clean_at_gain": _mean([g["clean"] for g in reached]) if every else None,
            "seed_times_s": [None if g is None else round(g["seconds"], 1) for g in gains],
            "best_c": _mean([max(p["c"] for p in points) for points in seeds.values()]),
            "best_clean_c": _mean([max(p["clean_c"] for p in points) for points in seeds.values()]),
            "final_clean": _mean([p["clean"] for p in final]), "steps": _mean([p["step"] for p in final]),
        })  # fmt: skip
    return rows


def table(rows: list[dict], base: dict, command: str) -> str:
    def pct(x):
        return f"{100 * x:.1f}%"

    reference = next((r["time_to_gain_s"] for r in rows if r["method"] == "flow_grpo"), None)
    lines = [f"Base generator: (c) {pct(base['c'])}, clean {pct(base['clean'])}, (c) in a clean picture "
             f"{pct(base['clean_c'])}.", f"Command: `{command}`", "",
             "| method | budget (CPU min) x seeds | time to +20 pts of (c) (per seed) | of flow_grpo's | steps to it | "
             "clean there | best (c) | best (c) in a clean picture | clean at the end | steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        seeds = ", ".join("-" if t is None else f"{t:.0f}" for t in r["seed_times_s"])
        if r["time_to_gain_s"] is not None:
            t = f"{r['time_to_gain_s']:.0f} s ({seeds})"
            share = f"{r['time_to_gain_s'] / reference:.2f}" if reference else "-"
            steps, clean = f"{r['steps_to_gain']:.1f}", pct(r["clean_at_gain"])
        else:
            t, share, steps, clean = f"not reached ({r['reached']}/{r['seeds']} seeds: {seeds})", "-", "-", "-"
        lines.append(f"| {r['method']} | {r['minutes']:g} x {r['seeds']} | {t} | {share} | {steps} | {clean} | "
                     f"{pct(r['best_c'])} | {pct(r['best_clean_c'])} | {pct(r['final_clean'])} | {r['steps']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, base: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for i, (method, seeds) in enumerate(results.items()):
        colour = f"C{i}"
        for k, points in enumerate(seeds.values()):
            xs = [p["seconds"] for p in points]
            ax.plot(xs, [100 * p["c"] for p in points], "-o", color=colour, ms=3, alpha=0.8,
                    label=f"{method} (c)" if k == 0 else None)
            ax.plot(xs, [100 * p["clean_c"] for p in points], ":", color=colour, alpha=0.8,
                    label=f"{method} (c) in a clean picture" if k == 0 else None)
    ax.axhline(100 * (base["c"] + GAIN), color="grey", lw=0.8, ls="--", label="base (c) + 20 points")
    ax.set_xlabel("CPU seconds spent in training (prompts + sampling + reward + training)")
    ax.set_ylabel("held-out oracle rate (%)")
    ax.set_title("shapes world: the flow-RL methods at equal training time (one line per seed)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True, help="training minutes per run (evaluation excluded)")
    parser.add_argument("--minutes-for", action="append", default=[], metavar="METHOD=M",
                        help="another budget for one method's runs, e.g. --minutes-for nft=5")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per method (train.seed 0..S-1)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one process and one torch thread each")
    parser.add_argument("--eval-every", type=int, default=5, help="steps between judged checkpoints")
    parser.add_argument("--heldout", type=int, default=400, help="held-out prompts judged (the first N; 400: all)")
    parser.add_argument("--train-prompts", type=int, default=0, help="use only the first N training prompts (0: all)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run, e.g. --set train.learning_rate=3e-3 (a sweep: one "
                             "study per value)")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or args.minutes <= 0 or args.seeds < 1 or args.eval_every < 1 or args.jobs < 1:
        parser.error(f"unknown methods {unknown}" if unknown
                     else "--minutes > 0, --seeds >= 1, --eval-every >= 1, --jobs >= 1")
    extra = dict((k, _parse_value(v)) for k, v in (item.split("=", 1) for item in args.set))
    budgets = {m: args.minutes for m in methods}
    for item in args.minutes_for:
        method, _, value = item.partition("=")
        try:
            minutes = float(value)
        except ValueError:
            minutes = 0.0
        if method not in budgets or not minutes > 0:
            parser.error(f"--minutes-for {item}: expected METHOD=MINUTES with METHOD one of {', '.join(methods)} "
                         "and MINUTES > 0")
        budgets[method] = minutes

    from ..config import load_config
    from ..prompts import load_prompts

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    preset = load_config(preset="shapes", overrides={"output.dir": str(out)})
    heldout = load_prompts(preset.prompts.eval_file)[: args.heldout]
    train_prompts = None
    if args.train_prompts:
        train_prompts = out / "train_prompts.txt"
        write_text(train_prompts, "\n".join(load_prompts(preset.prompts.train_file)[: args.train_prompts]) + "\n")

    base = judge(None, heldout)
    runs = [(method, seed) for method in methods for seed in range(args.seeds)]
    task = (args.eval_every, train_prompts, extra, heldout, base)
    points: dict[tuple[str, int], list[dict]] = {}
    if args.jobs == 1:
        for method, seed in runs:
            points[method, seed] = run_and_judge(method, seed, out, budgets[method], *task)
    else:  # spawn: each run a fresh process with its own torch thread
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {run: pool.submit(run_and_judge, *run, out, budgets[run[0]], *task) for run in runs}
            for run, future in futures.items():
                points[run] = future.result()
    results = {method: {f"seed{seed}": points[method, seed] for seed in range(args.seeds)} for method in methods}
    write_json(out / "results.json", {"base": base, "minutes": budgets, "overrides": extra,
                                      "heldout": len(heldout), "results": results})
    rows = summarise(results, base, budgets)
    command = "python -m training.grpo.recipes.shapes_speed " + " ".join(argv if argv is not None else sys.argv[1:])
    write_text(out / "table.md", table(rows, base, command))
    plot(results, base, out / "curve.png")
    print((out / "table.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
