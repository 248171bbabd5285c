"""`make demo`: the main job end to end on the shapes world, on a CPU, in minutes.

1. build a shapes SpatialReward dataset (held-out test split by scene);
2. evaluate the shipped shapes scorer on the held-out pairs in the paper's Table 1 layout (the zero-shot and
   pairwise baselines need a Qwen2.5-VL base; the shipped coords scorer has none, so its table has one row);
3. optionally continue its training briefly on the train split (curves PNG, exported scorer);
4. rank candidates of one held-out prompt with the scorer and draw them, best first, with their scores and the
   pixel oracle's verdict (a contact sheet);
5. the RL proof (demo_grpo.py): a short live Spatial GRPO run of the shipped shapes generator, then the generator
   without and with the shipped `shapes-grpo` LoRA on held-out prompts, judged by the pixel oracle;
6. write demo_out/report.md linking all of it.

Without a shipped scorer (a checkout whose assets were removed) a tiny random one stands in, and the report says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from PIL import Image, ImageDraw

from .common.atomic import write_text


def build_dataset(out: Path, pairs: int, seed: int) -> Path:
    from .dataset.__main__ import main as dataset_main

    data = out / "data"
    rc = dataset_main(["build", "--world", "shapes", "--pairs", str(pairs), "--seed", str(seed),
                       "--out", str(data)])
    if rc != 0:
        raise SystemExit(f"dataset build failed (exit {rc})")
    return data


def pick_scorer(out: Path) -> tuple[str, str | None]:
    """The shipped shapes scorer, or a tiny random stand-in with a warning for the report."""
    from .reward.models.loading import shipped_scorers

    if "shapes" in shipped_scorers():
        return "shapes", None
    from .reward.models.tiny import save_tiny_scorer

    folder = out / "untrained-scorer"
    if not (folder / "spatialscore.json").is_file():
        save_tiny_scorer(folder, seed=0)
    return str(folder), ("No trained shapes scorer is shipped yet: a tiny RANDOM scorer stands in, so the "
                         "accuracies below are chance-level by construction. The pipeline is what this shows.")


def evaluate(model: str, data: Path, out: Path, baselines: bool) -> tuple[dict, str]:
    from .reward.__main__ import main as reward_main

    args = ["evaluate", "--model", model, "--data", str(data), "--json", str(out / "eval.json"),
            "--markdown", str(out / "eval.md")]
    if not baselines:
        args.append("--no-baselines")
    if reward_main(args) != 0:
        raise SystemExit("evaluation failed")
    return json.loads((out / "eval.json").read_text()), (out / "eval.md").read_text()


def continue_training(model: str, data: Path, out: Path, steps: int) -> tuple[Path | None, dict]:
    """A few more reward-training steps from the scorer (its own preset for the shipped one: the same loss and
    grounding; the LR is still warming up over so few steps, so the scorer moves little)."""
    from .reward.__main__ import main as reward_main

    run = out / "train"
    preset = "shapes_coords" if model == "shapes" else "tiny"
    rc = reward_main(["train", "--preset", preset, "--init-from", model, "--data", str(data), "--out", str(run),
                      "--steps", str(steps)])
    if rc != 0:
        raise SystemExit("training failed")
    curves = sorted(run.glob("*.png"))
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    return (curves[0] if curves else None), summary


def contact_sheet(scorer_name: str, data: Path, out: Path, n: int = 8, seed: int = 0) -> tuple[Path, dict]:
    from .dataset.oracle import judge
    from .reward import load_scorer
    from .reward.recipes.shapes_relayout import candidates_for

    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines() if line.strip()]
    test = [r for r in rows if r["split"] == "test"] or rows
    row = max(test, key=lambda r: (len(r["scene"]["objects"]), -int(r["id"][1:8])))  # a 3-object scene if any
    row["_dir"] = str(data)
    images = candidates_for(row, n, seed)
    result = load_scorer(scorer_name).score(images, row["prompt"])
    verdicts = [judge(im, row["prompt"]).all for im in images]
    order = sorted(range(n), key=lambda i: -float(result.mean[i]))
    cell = 160  # thumbnail size; every candidate is resized to it
    sheet = Image.new("RGB", (cell * n, cell + 46), "white")
    draw = ImageDraw.Draw(sheet)
    for rank, i in enumerate(order):
        im = images[i].resize((cell - 8, cell - 8), Image.NEAREST)
        sheet.paste(im, (rank * cell + 4, 4))
        colour = (20, 140, 40) if verdicts[i] else (200, 30, 30)
        draw.rectangle([rank * cell + 2, 2, rank * cell + cell - 3, cell - 3], outline=colour, width=3)
        draw.text((rank * cell + 6, cell + 2), f"#{rank + 1} {float(result.mean[i]):+.2f}", fill="black")
        draw.text((rank * cell + 6, cell + 16), f"std {float(result.std[i]):.2f}", fill="black")
        draw.text((rank * cell + 6, cell + 30), "oracle: holds" if verdicts[i] else "oracle: fails", fill=colour)
    path = out / "ranked_candidates.png"
    sheet.save(path)
    n_true = sum(verdicts)
    # How often a candidate the oracle accepts is ranked above one it rejects (AUC of the ranking).
    wins = sum(float(result.mean[i]) > float(result.mean[j]) for i in range(n) for j in range(n)
               if verdicts[i] and not verdicts[j])
    pairs = n_true * (n - n_true)
    return path, {"prompt": row["prompt"], "candidates": n, "oracle_true": n_true,
                  "ranking_auc": wins / pairs if pairs else None, "best_is_true": verdicts[order[0]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo_out", help="output folder (replaced)")
    ap.add_argument("--pairs", type=int, default=2000, help="pairs in the demo dataset (10%% held out for the test)")
    ap.add_argument("--seed", type=int, default=20261123)
    ap.add_argument("--train-steps", type=int, default=0, help="continue the scorer's training this many steps")
    ap.add_argument("--no-baselines", action="store_true", help="skip the zero-shot and pairwise baselines")
    ap.add_argument("--grpo-steps", type=int, default=4, help="steps of the live GRPO run (0: skip the RL proof)")
    ap.add_argument("--grpo-prompts", type=int, default=100, help="held-out prompts of the before/after comparison")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.time()
    data = build_dataset(out, args.pairs, args.seed)
    scorer, warning = pick_scorer(out)
    report, table = evaluate(scorer, data, out, baselines=not args.no_baselines)
    curves, trained = continue_training(scorer, data, out, args.train_steps) if args.train_steps > 0 else (None, {})
    sheet, ranking = contact_sheet(scorer, data, out)
    lines = ["# SpatialScore demo: the shapes world", ""]
    if warning:
        lines += [f"> **{warning}**", ""]
    lines += [f"Scorer: `{scorer}`. Dataset: {args.pairs} pairs, seed {args.seed} (`data/manifest.jsonl`); "
              f"evaluated on the held-out test split ({report['pairs']} pairs, scenes never seen in training).", "",
              "## Pairwise accuracy (the paper's Table 1 layout)", "", table.strip(), "",
              "## One held-out prompt, candidates ranked by the scorer", "",
              f"Prompt: *{ranking['prompt']}*. {ranking['candidates']} candidates (the perfect image and random "
              f"re-layouts of its objects); the pixel oracle accepts {ranking['oracle_true']}. Best-ranked is "
              f"{'correct' if ranking['best_is_true'] else 'wrong'}; oracle-accepted candidates outrank rejected "
              f"ones in {ranking['ranking_auc']:.0%} of comparisons." if ranking["ranking_auc"] is not None else
              f"Prompt: *{ranking['prompt']}*.", "", f"![ranked candidates]({sheet.name})", ""]
    if curves is not None:
        best = trained.get("best") or {}
        lines += ["## Continued training", "",
                  f"{trained.get('steps')} more steps of `python -m training.reward train` from the scorer on the "
                  f"train split ({trained.get('train_pairs')} pairs); validation accuracy at the end: "
                  + (f"{best['val_accuracy']:.1%} on {trained.get('val_pairs')} pairs." if best.get("val_accuracy")
                     is not None else "n/a (no validation pairs)."), "",
                  f"![training curves]({curves.relative_to(out)})", ""]
    if args.grpo_steps > 0:
        from .demo_grpo import report_lines

        lines += report_lines(out, args.grpo_steps, args.grpo_prompts)
    lines += [f"Total time: {time.time() - t0:.0f} s.", ""]
    write_text(out / "report.md", "\n".join(lines))
    print("\n".join(lines))
    print(f"report: {out / 'report.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
