"""One headless evaluation, from arguments to the report folder; every refusal comes before any sampling.

Order: the prompt set, the generator and each LoRA against it (file headers only), the scorer and whether it can
read the prompts, then sampling, scoring, judging and the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .analysis import analyse
from .benches import load_prompt_set
from .judge import EvaluationInputError, pairwise_judge, vocabulary_problem
from .pictures import save_gains_losses
from .report import headline, write_report
from .statistics import CONFIDENT_STD
from .variants import check_lora_fits, plan_variants, sample_variants, sampling_settings


@dataclass
class EvaluationArgs:
    model: str
    out: Path
    loras: list[str] = field(default_factory=list)
    bench: str | None = None
    prompts: Path | None = None
    scorer: str | None = None
    judge: str | None = None
    images_per_prompt: int = 1
    seed: int = 0
    limit: int | None = None
    num_steps: int | None = None
    guidance: float | None = None
    height: int | None = None
    width: int | None = None
    batch_size: int = 50  # sample_eval's: the same batches give the same pictures bit for bit
    device: str = "auto"
    confident_std: float = CONFIDENT_STD


def default_scorer(model: str) -> str:
    if model == "shapes":
        return "shapes"  # the pack's default scorer, not `shapes-gen` that the shipped LoRA was trained against
    raise EvaluationInputError(f"--scorer is needed for --model {model}: a SpatialScore folder or a plain "
                               "Qwen2.5-VL folder (zero-shot)")  # fmt: skip


def check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise EvaluationInputError(f"--out {out}: exists and is not an empty folder; choose a new one")


def evaluate(args: EvaluationArgs, log=print) -> dict:
    from training.reward import load_scorer

    from ..shipped import resolve_generator

    check_out(args.out)
    what, items = load_prompt_set(args.bench, args.prompts, args.limit)
    model = resolve_generator(args.model)
    variants = plan_variants(args.loras)
    for variant, given in zip(variants[1:], args.loras, strict=True):
        check_lora_fits(model, variant.lora, given)
    settings = sampling_settings(model, args.num_steps, args.guidance, args.height, args.width)
    scorer_name = args.scorer or default_scorer(args.model)
    started = time.monotonic()
    scorer = load_scorer(scorer_name, device=None if args.device == "auto" else args.device)
    prompts = [item.prompt for item in items]
    problem = vocabulary_problem(scorer, prompts, f"the scorer {scorer_name!r}")
    if problem:
        raise EvaluationInputError(problem)
    if args.judge:
        from training.reward.models.loading import load_model

        judge, judge_why = pairwise_judge(load_model(args.judge, device=None if args.device == "auto" else args.device),
                                          batch_size=scorer.batch_size)  # fmt: skip
        if judge is None:
            raise EvaluationInputError(f"--judge {args.judge}: {judge_why}")
    else:
        judge, judge_why = pairwise_judge(scorer.model, batch_size=scorer.batch_size)
    log(f"{what}: {len(items)} prompts x {args.images_per_prompt} image(s), variants "
        f"{', '.join(v.name for v in variants)}; scorer {scorer_name} ({scorer.mode})")  # fmt: skip

    t0 = time.monotonic()
    images = sample_variants(args.model, variants, prompts, settings, seed=args.seed,
                             images_per_prompt=args.images_per_prompt, batch_size=args.batch_size,
                             device=args.device, progress=_printer("sampling", log))  # fmt: skip
    t1 = time.monotonic()
    report = analyse(items, images, scorer.score, judge=judge, judge_why=judge_why,
                     confident_std=args.confident_std)  # fmt: skip
    t2 = time.monotonic()
    report = {
        "prompt_set": what, "model": args.model, "loras": {v.name: str(v.lora) for v in variants if v.lora},
        "scorer": f"{scorer_name} ({scorer.mode})", "judge": args.judge or (scorer_name if judge else None),
        "seed": args.seed, "settings": settings, **report,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    report["pictures"] = [p.name for p in save_gains_losses(report, images, args.out)]
    report["seconds"] = {"loading": round(t0 - started, 1), "sampling": round(t1 - t0, 1),
                         "scoring": round(t2 - t1, 1)}  # fmt: skip
    write_report(report, args.out)
    log(headline(report))
    return report


def _printer(phase: str, log):
    """A progress line at most every 10% (a CLI on a CPU runs for minutes)."""
    last = [-1]

    def progress(done: int, total: int) -> None:
        tenth = 10 * done // max(1, total)
        if tenth != last[0]:
            last[0] = tenth
            log(f"{phase}: {done}/{total} images")

    return progress
