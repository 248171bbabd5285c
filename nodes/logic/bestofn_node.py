"""The Best-of-N Sampler node's logic: sample N candidates as one batch, in segments cut at the pruning points, and
finish only the candidates whose predicted clean image (x0) scores best.

No ComfyUI here: the sampling of one segment, the decoding and the scoring come in as functions (the node gives
ComfyUI's sampler, VAE and scorer, nodes/comfy/segments.py; tests give their own). The decisions, the
record of who was dropped when and the report are training.bestofn's (one implementation for the CLI and the node).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .training_import import import_training
from .widgets import Widget

import_training("bestofn")  # inside ComfyUI the pack is not on sys.path
from training.bestofn.pruning import Pruner  # noqa: E402
from training.bestofn.report import prompt_record, totals  # noqa: E402
from training.bestofn.schedule import ScheduleError, Stage, default_schedule, forwards, resolve_schedule  # noqa: E402

# sample(x, start, end, alive) -> (x after `end` steps, x0 predicted by the last model call of the segment, both in
# the LATENT space KSampler outputs); `alive`: the candidate ids of x's rows, for samplers that track per-candidate
# state. start == 0: x is the empty latent and the sampler adds the noise.
SegmentFn = Callable[[torch.Tensor, int, int, list[int]], tuple[torch.Tensor, torch.Tensor]]
DecodeFn = Callable[[torch.Tensor], torch.Tensor]  # LATENT samples -> IMAGE [B,H,W,3]
ScoreFn = Callable[[torch.Tensor], torch.Tensor]  # IMAGE -> reward means [B]


# The node's widgets, declared once: the schema's inputs (after model, positive, vae and scorer; the optional negative
# follows them) are made from this table; BestOfNSettings takes the four that set the pruning.
WIDGETS = (
    Widget("prompt", str, "", multiline=True,
           tooltip="The text the scorer checks the images against: the same prompt as the positive conditioning "
                   "(connect one text node to both)."),
    Widget("n", int, 16, min=1, max=256,
           tooltip="Candidates sampled (N). They start as one batch; pruning shrinks it."),
    Widget("keep", int, 1, min=1, max=256, tooltip="Images returned (K), best first by final score. At most n."),
    Widget("schedule", str, "default",
           tooltip="When to prune: KEEP@FRACTION,... keeps the KEEP best after that fraction of the steps (e.g. "
                   "8@0.25,2@0.5). 'default': 2@0.34, the best measured, where it fits n and keep. 'none': plain "
                   "best-of-N (same images as KSampler on a batch of n, then Rerank)."),
    Widget("sampler_name", str, "euler", options=(),  # ComfyUI's samplers: the node lists them
           tooltip="ComfyUI's sampler. One-step samplers (euler) give survivors exactly their unpruned images; "
                   "multistep ones restart their history at pruning points."),
    Widget("scheduler", str, "simple", options=(),  # ComfyUI's schedulers: the node lists them
           tooltip="ComfyUI's noise schedule (simple for Flux)."),
    Widget("steps", int, 20, min=1, max=1000,
           tooltip="Sampling steps; pruning fractions map to whole steps (round(F x steps))."),
    Widget("cfg", float, 1.0, min=0.0, max=100.0, step=0.1, round=0.01,
           tooltip="Classifier-free guidance. 1.0 for Flux (guidance is in the conditioning); other values need a "
                   "negative."),
    Widget("seed", int, 0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
           tooltip="Noise seed of the batch (as KSampler's for a batch of n)."),
    Widget("width", int, 1024, min=16, max=8192, step=16,
           tooltip="Image width in pixels; a multiple of 2 x the VAE's downscale."),
    Widget("height", int, 1024, min=16, max=8192, step=16,
           tooltip="Image height in pixels; a multiple of 2 x the VAE's downscale."),
)


@dataclass
class BestOfNSettings:
    n: int
    keep: int
    schedule: str  # "KEEP@FRACTION,...", "none", or "default"
    steps: int

    def resolved(self) -> str:
        """The schedule text the run uses: "default" is training.bestofn's default for these N, K and steps."""
        text = (self.schedule or "").strip()
        if text.lower() != "default":
            return text or "none"
        return default_schedule(self.n, self.keep, self.steps)

    def stages(self) -> list[Stage]:
        """The pruning stages, or a ScheduleError naming the input (keep > n, a schedule that does not shrink...)."""
        if self.keep > self.n:
            raise ScheduleError(f"keep {self.keep} is more than n {self.n}: keep at most the candidates sampled")
        try:
            return resolve_schedule(self.resolved(), self.n, self.keep, self.steps)
        except ScheduleError as exc:
            raise ScheduleError(str(exc).replace("--prune", "schedule").replace("--keep", "keep")
                                .replace("--n", "n")) from None  # fmt: skip


def check_settings(settings: BestOfNSettings) -> list[str]:
    """Every problem of the widget values, one line each (empty when fine)."""
    try:
        settings.stages()
    except ScheduleError as exc:
        return [str(exc)]
    return []


@dataclass
class BestOfNResult:
    images: torch.Tensor  # [K,H,W,3], best first
    latents: torch.Tensor  # [K,...] in KSampler's LATENT space, same order
    kept: list[dict]  # {"candidate", "rank", "score"}, best first
    report: dict
    pruner: Pruner
    positions: list[int] = field(default_factory=list)  # the kept images' rows in the final scoring round

    @property
    def scores(self) -> list[float]:
        return [k["score"] for k in self.kept]

    @property
    def candidates(self) -> list[int]:
        return [k["candidate"] for k in self.kept]

    def report_json(self) -> str:
        return json.dumps(self.report, indent=1)

    def text_lines(self) -> list[str]:
        r = self.report
        lines = [f"best-of-{r['n']}, schedule {r['prune']}: kept {len(self.kept)}; "
                 f"{r['transformer_forwards']} model forwards ({r['full_forwards']} without pruning), "
                 f"{r['decodes']} decodes, {r['scores']} scores, {r['wall_time_s']:.1f} s"]  # fmt: skip
        for d in self.pruner.dropped:
            lines.append(f"dropped candidate {d['candidate']} after step {d['step']} (x0 score {d['score']:.3f})")
        for k in self.kept:
            lines.append(f"#{k['rank'] + 1}: candidate {k['candidate']}, score {k['score']:.3f}")
        return lines


def pruned_best_of_n(settings: BestOfNSettings, empty_latent: torch.Tensor, sample: SegmentFn, decode: DecodeFn,
                     score: ScoreFn, prompt: str, forward_count: Callable[[], int] = lambda: 0,
                     on_scored: Callable[[], None] | None = None) -> BestOfNResult:
    """Sample the batch `empty_latent` ([N,...]) in segments ending at the pruning points; after each, decode and
    score the living candidates' x0, keep the best (the rows of x); finish the survivors; rank them by final score.

    `forward_count()` reads the model-call counter of `sample` (rows through the model, cond and uncond counted);
    `on_scored` is called after each scoring round (progress).
    """
    stages = settings.stages()
    n, steps = settings.n, settings.steps
    if empty_latent.shape[0] != n:
        raise ValueError(f"empty latent holds {empty_latent.shape[0]} samples for n {n}")
    start = time.perf_counter()
    pruner = Pruner(n, stages, steps)
    decodes = scores = 0
    x, done = empty_latent, 0
    for stage in stages:
        x, x0 = sample(x, done, stage.step, list(pruner.alive))
        done = stage.step
        preview_scores = _scores(score, decode(x0), len(pruner.alive))
        decodes, scores = decodes + len(pruner.alive), scores + len(pruner.alive)
        pruner.note(stage.step, preview_scores.tolist())
        x = x[pruner.after_step(stage.step, preview_scores)]
        if on_scored is not None:
            on_scored()
    x, _ = sample(x, done, steps, list(pruner.alive))
    images = decode(x)
    final_scores = _scores(score, images, len(pruner.alive))
    decodes, scores = decodes + len(pruner.alive), scores + len(pruner.alive)
    best = pruner.final(final_scores, settings.keep)
    positions = [p for p, _, _ in best]
    kept = [{"candidate": c, "rank": r, "score": s} for r, (_, c, s) in enumerate(best)]
    report = {**totals(forward_count(), decodes, scores, time.perf_counter() - start, n, settings.keep,
                       settings.resolved(), stages),
              "full_forwards": _full(forward_count(), n, stages, steps),
              "steps": steps, **prompt_record(prompt, 0, pruner, kept)}  # fmt: skip
    return BestOfNResult(images[positions], x[positions], kept, report, pruner, positions)


def _full(counted: int, n: int, stages: list[Stage], steps: int) -> int:
    """What the same run would have cost without pruning: the counted forwards scaled from the pruned schedule's
    per-candidate-step count to N x steps (a model with CFG makes two forwards per candidate and step)."""
    planned = forwards(n, stages, steps)
    return round(counted * (n * steps) / planned) if planned else 0


def _scores(score: ScoreFn, images: torch.Tensor, expected: int) -> torch.Tensor:
    values = torch.as_tensor(score(images), dtype=torch.float32).flatten().cpu()
    if values.numel() != expected:
        raise RuntimeError(f"the scorer returned {values.numel()} scores for {expected} images")
    return values
