"""The ablation table of docs/grpo.md: GRPO variants in the shapes world at equal CPU time, one core each.

    python -m research.shapes_grpo.shapes_ablations --out runs/ablations --minutes 11

Each row is a real run of `python -m training.grpo --preset shapes` with one change, stopped by
`train.time_budget_minutes` (so a variant that costs more per step gets fewer steps), then judged on the same
held-out prompts and noise by the pixel oracle. A finished row is skipped when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

VARIANTS = {  # every row spells out the settings the rows differ in: the preset's own have changed over time
    "top-6 + bottom-6, beta 0, SpatialScore reward": ["--train.top_k", "6", "--train.beta", "0"],
    "all 24 samples (no top-k filter), beta 0": ["--train.top_k", "0", "--train.beta", "0"],
    "top-6 + bottom-6, KL beta 0.1": ["--train.top_k", "6", "--train.beta", "0.1"],
    "pixel oracle as the reward (upper bound), beta 0.1": ["--reward.path", "oracle:shapes", "--train.top_k", "6",
                                                           "--train.beta", "0.1"],
}
COLUMNS = ("oracle_objects_ok", "oracle_relation_ok", "oracle_all_ok", "oracle_all_ok_2obj", "oracle_all_ok_3obj",
           "oracle_clean", "oracle_clean_all_ok")


def _percent(record: dict, key: str) -> str:
    return f"{100 * record[key]:.1f}" if record.get(key) is not None else "-"  # runs older than the clean figures


def run_variant(out: Path, name: str, extra: list[str], minutes: float, seed: int, model: str) -> dict:
    folder = out / f"{list(VARIANTS).index(name)}"
    if not (folder / "lora.safetensors").is_file():
        cmd = [sys.executable, "-m", "training.grpo", "--preset", "shapes", "--model.path", model, "--out",
               str(folder), "--steps", "100000", "--train.time_budget_minutes", str(minutes), "--train.seed",
               str(seed), "--output.eval_every", "0", "--output.checkpoint_every", "25", *extra]  # fmt: skip
        if (folder / "checkpoints").is_dir():
            cmd.append("--resume")
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    records = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]
    first = next(r for r in records if r.get("oracle_all_ok") is not None)
    last = [r for r in records if r.get("oracle_all_ok") is not None][-1]
    return {"variant": name, "seed": seed, "steps": last["step"], "before": first, "after": last,
            "args": " ".join(extra) or "(preset)"}


def table(rows: list[dict], minutes: float) -> str:
    lines = [f"| variant ({minutes:g} min of GRPO on one core each) | seed | steps | (a) objects | (b) relations | "
             "(c) all relations | (c) 2 objects | (c) 3 objects | clean picture | (c) clean |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = rows[0]["before"]
    lines.append("| the generator before GRPO | - | 0 | " + " | ".join(_percent(base, c) for c in COLUMNS) + " |")
    for r in rows:
        lines.append(f"| {r['variant']} | {r['seed']} | {r['steps']} | "
                     + " | ".join(_percent(r["after"], c) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.shapes_grpo.shapes_ablations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--minutes", type=float, default=11.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--only", type=int, nargs="*", help="row numbers to run (default: all)")
    args = parser.parse_args(argv)
    rows = [run_variant(args.out, name, extra, args.minutes, args.seed, args.model)
            for i, (name, extra) in enumerate(VARIANTS.items()) if args.only is None or i in args.only]
    text = table(rows, args.minutes)
    (args.out / "ablations.md").write_text(text + "\n")
    (args.out / "ablations.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
