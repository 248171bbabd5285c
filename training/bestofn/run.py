"""One best-of-N run into a folder: DIR/samples.jsonl, DIR/images/, DIR/report.json.

samples.jsonl: one line per prompt and kept image, {"prompt", "image" (relative to DIR), "rank", "score",
"candidate"}. report.json: the totals ("transformer_forwards", "decodes", "scores", "wall_time_s"), the settings,
and per prompt who was dropped at which step with what score. The folder appears whole or not at all (written to
a temporary name, then renamed), so a killed run leaves nothing half-written and is simply run again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .config import BestOfNConfig
from .pruning import spearman
from .report import prompt_record
from .report import totals as run_totals
from .sampler import Counters, best_of_n, prompt_seed
from .schedule import resolve_schedule


def check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {out}: exists and is not an empty folder; choose a new one")


def check_memory(model: Path, settings: dict, cfg: BestOfNConfig, prompts: int) -> None:
    """Before anything loads: sides the model takes, and N candidates that fit in the free memory (ValueError naming
    the largest N or size that would). The N candidates go through the transformer as one batch; their decoded x0
    previews and every prompt's kept images stay in RAM."""
    from training.common.memory_guard import check_fits, checked_folder_sizes, free_memory, sampling_need
    from training.grpo.sampling import VAE_BATCH

    height, width = settings["height"], settings["width"]
    device, sizes = checked_folder_sizes(model, cfg.device, settings)

    def need(n: int, h: int, w: int):
        return sampling_need(sizes, rows=n, height=h, width=w, stored_latents=0, decode_rows=VAE_BATCH,
                             held_images=n + prompts * cfg.keep)  # fmt: skip

    check_fits("--n ", cfg.n, height, width, need, free_memory(device), sizes.multiple)


def load_everything(cfg: BestOfNConfig):
    """(prompts, policy, settings, scorer), or a clear error naming the bad argument."""
    import argparse

    from training.grpo.prompts import load_prompts
    from training.grpo.sampling import load_policy, settings_for
    from training.grpo.shipped import resolve_generator, resolve_lora
    from training.reward.scorer import load_scorer

    prompts = load_prompts(cfg.prompts)[: cfg.limit]
    model = resolve_generator(cfg.model)
    lora = resolve_lora(cfg.lora) if cfg.lora else None
    overrides = argparse.Namespace(num_steps=cfg.num_steps, guidance=cfg.guidance, height=cfg.height,
                                   width=cfg.width)  # fmt: skip
    settings = settings_for(model, overrides)
    cfg.settle_steps(settings["num_steps"])
    resolve_schedule(cfg.prune, cfg.n, cfg.keep, settings["num_steps"])  # before the slow loads
    check_memory(model, settings, cfg, len(prompts))
    scorer = load_scorer(cfg.scorer, device="cpu" if cfg.device == "auto" else cfg.device)
    policy = load_policy(model, lora, cfg.device, settings["max_sequence_length"])
    if lora is None:
        policy.transformer.disable_adapters()  # the attached rank-1 adapter must have no effect at all
    settings = {**settings, "model": str(model), "lora": str(lora) if lora else None}
    return prompts, policy, settings, scorer


def run(cfg: BestOfNConfig) -> Path:
    from PIL import Image
    from tqdm import tqdm

    from training.common.atomic import atomic_dir

    cfg.validate()
    check_out(cfg.out)
    prompts, policy, settings, scorer = load_everything(cfg)
    stages = resolve_schedule(cfg.prune, cfg.n, cfg.keep, settings["num_steps"])

    def score(images, texts):
        return scorer.score(images, texts).mean

    counts, records, lines, kept_images = Counters(), [], [], []
    start = time.perf_counter()
    for index, prompt in enumerate(tqdm(prompts, desc=f"best-of-{cfg.n}", dynamic_ncols=True)):
        result = best_of_n(policy, prompt, cfg.n, cfg.keep, stages, settings, prompt_seed(cfg.seed, index), score,
                           trace=cfg.trace)  # fmt: skip
        counts.add(result.counters)
        records.append(prompt_record(prompt, index, result.pruner, result.kept, trace=cfg.trace))
        for kept, image in zip(result.kept, result.images, strict=True):
            name = f"images/{index:05d}_{kept['rank']}.png"
            kept_images.append((name, image))
            lines.append({"prompt": prompt, "image": name, **kept})
    wall = time.perf_counter() - start
    report = {**run_totals(counts.transformer_forwards, counts.decodes, counts.scores, wall, cfg.n, cfg.keep,
                           cfg.prune, stages),
              "prompts": len(prompts), "seed": cfg.seed, "scorer": cfg.scorer, "settings": settings,
              "trace": cfg.trace}  # fmt: skip
    if cfg.trace:
        report["rank_correlation_by_step"] = rank_correlations(records, settings["num_steps"])
    if cfg.oracle:
        report["oracle_top1"] = oracle_top1(prompts, [image for name, image in kept_images if name.endswith("_0.png")])
    report["per_prompt"] = records
    if cfg.out.is_dir():
        cfg.out.rmdir()  # empty (checked above); atomic_dir puts the finished folder in its place
    with atomic_dir(cfg.out) as tmp:
        (tmp / "images").mkdir()
        for name, image in kept_images:
            Image.fromarray((image.numpy() * 255).round().astype("uint8")).save(tmp / name)
        (tmp / "samples.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        (tmp / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return cfg.out


def rank_correlations(records: list[dict], steps: int) -> list[float | None]:
    """Per step: the mean over prompts of Spearman(x0 score at that step, final score) across candidates that were
    scored at both (all N with --prune none)."""
    means = []
    for step in range(steps - 1):
        values = []
        for record in records:
            pairs = [(t[step], t[-1]) for t in record["trace"].values() if t[step] is not None and t[-1] is not None]
            rho = spearman([a for a, _ in pairs], [b for _, b in pairs]) if len(pairs) > 1 else None
            if rho is not None:
                values.append(rho)
        means.append(round(sum(values) / len(values), 4) if values else None)
    return means


def oracle_top1(prompts: list[str], images) -> dict:
    import torch

    from training.grpo.oracle_judge import oracle_figures, oracle_verdicts

    return oracle_figures(oracle_verdicts(torch.stack(list(images)), prompts))
