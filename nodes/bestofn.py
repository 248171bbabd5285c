"""SpatialScore Best-of-N Sampler: N candidates of one prompt, pruned on the scores of their predicted clean images
while sampling, so only the promising ones are finished.

A thin V3 node: the segmented sampling is ComfyUI's own (nodes/comfy/segments.py), the widgets (declared once,
WIDGETS), the driver and the report are nodes/logic/bestofn_node.py over training.bestofn (schedule, pruner, report
format shared with the CLI).
"""

from __future__ import annotations

from dataclasses import fields

import comfy.samplers
import comfy.utils
from comfy_api.latest import io

from .comfy.models import free_for_sampling
from .comfy.segments import ComfySegments, decode_images, vae_downscale
from .common import scorer_input, ui_payload, widget_errors, widget_inputs
from .logic.bestofn_node import WIDGETS, BestOfNSettings, check_settings, pruned_best_of_n
from .logic.memory_check import check_best_of_n
from .logic.scoring import score_images, warning_lines
from .logic.widget_limits import accept
from .socket_types import CATEGORY


def _check_size(width: int, height: int, downscale: int) -> None:
    multiple = 2 * downscale  # Flux packs 2x2 latent patches; other models are fine with it too
    for name, value in (("width", width), ("height", height)):
        if value % multiple:
            raise ValueError(f"{name} {value}: must be a multiple of {multiple} (2 x the VAE's downscale {downscale})")


class SpatialScoreBestOfNSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpatialScoreBestOfNSampler",
            display_name="SpatialScore Best-of-N Sampler (pruned)",
            category=CATEGORY,
            description="Samples n candidates of one prompt as one batch. At each point of the schedule it decodes "
                        "every living candidate's predicted clean image, scores it with SpatialScore and keeps only "
                        "the best; the survivors are finished and the top `keep` returned, best first. Costs a "
                        "fraction of n full samplings for about the same best image (docs/bestofn.md).",
            is_output_node=True,
            inputs=[
                io.Model.Input("model", tooltip="The diffusion model (Flux or any model KSampler samples), with its "
                                                 "LoRAs and patches."),
                io.Conditioning.Input("positive", tooltip="The prompt's conditioning (CLIP Text Encode)."),
                io.Vae.Input("vae", tooltip="The model's VAE: decodes the x0 previews the scorer judges and the "
                                             "final images."),
                scorer_input(),
                *widget_inputs(WIDGETS, options={"sampler_name": comfy.samplers.KSampler.SAMPLERS,
                                                 "scheduler": comfy.samplers.KSampler.SCHEDULERS}),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Negative conditioning, for models sampled with cfg != 1. Leave empty "
                                              "for Flux."),
            ],
            outputs=[
                io.Image.Output("images", display_name="images", tooltip="The top `keep` images, best first."),
                io.Latent.Output("latent", display_name="latent",
                                 tooltip="Their latents, same order (e.g. for an upscale pass)."),
                io.Float.Output("scores", display_name="scores", is_output_list=True,
                                tooltip="Their final SpatialScore means, best first."),
                io.Int.Output("candidates", display_name="candidates", is_output_list=True,
                              tooltip="Their candidate numbers (0-based: the position in a KSampler batch of n)."),
                io.String.Output("report", display_name="report",
                                 tooltip="JSON: model forwards (and without pruning), decodes, scores, wall time, "
                                         "and who was dropped after which step with what x0 score."),
            ],
        )

    @classmethod
    def validate_inputs(cls, **inputs) -> bool:
        # **inputs: every widget is checked here against its schema limits (ComfyUI then checks none of them)
        # (a missing input is ComfyUI's own error, so only the values given are checked)
        errors = widget_errors(cls, inputs)
        counts = [inputs.get(f.name) for f in fields(BestOfNSettings)]  # n, keep, schedule, steps
        if not errors and None not in counts:  # the schedule's checks take counts inside the widgets' limits
            errors = check_settings(BestOfNSettings(*counts))
        sampler, scheduler = inputs.get("sampler_name"), inputs.get("scheduler")
        if sampler is not None and sampler not in comfy.samplers.KSampler.SAMPLERS:
            errors.append(f"sampler_name: unknown sampler {sampler!r}")
        if scheduler is not None and scheduler not in comfy.samplers.KSampler.SCHEDULERS:
            errors.append(f"scheduler: unknown scheduler {scheduler!r}")
        return accept(errors)

    @classmethod
    def execute(cls, model, positive, vae, scorer, prompt, n, keep, schedule, sampler_name, scheduler, steps, cfg,
                seed, width, height, negative=None) -> io.NodeOutput:
        settings = BestOfNSettings(n, keep, schedule, steps)
        problems = check_settings(settings)
        if problems:
            raise ValueError("; ".join(problems))
        if not prompt.strip():
            raise ValueError("prompt: empty; give the text of the positive conditioning, which the scorer checks")
        downscale = vae_downscale(vae)
        _check_size(width, height, downscale)
        check_best_of_n(model, vae, positive, n, width, height, cfg, free_for_sampling())  # before any sampling
        stages = settings.stages()
        bar = comfy.utils.ProgressBar(steps + len(stages) + 1)
        scored = [0]

        def on_step(step: int) -> None:
            bar.update_absolute(step + scored[0], steps + len(stages) + 1)

        def on_scored() -> None:
            scored[0] += 1

        segments = ComfySegments(model, positive, negative, cfg, sampler_name, scheduler, steps, seed, on_step)
        last = {}

        def score(images):
            last["table"] = score_images(scorer, images, prompt, "same for all")
            return last["table"].mean

        result = pruned_best_of_n(settings, segments.empty_latent(n, height, width, downscale), segments,
                                  lambda latent: decode_images(vae, latent), score, prompt,
                                  forward_count=lambda: segments.forwards, on_scored=on_scored)  # fmt: skip
        bar.update_absolute(steps + len(stages) + 1)
        final = last["table"]  # the final round: the survivors, of which `positions` are the kept ones
        stds = [float(final.std[p]) for p in result.positions]
        warnings = [final.warnings[p] for p in result.positions] if final.warnings else []
        # a warning heads the text and flags the badges, as in Score and Rerank: it is what the user must see first
        lines = [*warning_lines(warnings), f"SpatialScore {scorer.describe()}", *result.text_lines()]
        ui = ui_payload(cls, result.images, result.scores, stds, lines, indices=result.candidates,
                        prompts=[prompt] * len(result.kept), warnings=warnings or None)  # fmt: skip
        return io.NodeOutput(result.images, {"samples": result.latents}, result.scores, result.candidates,
                             result.report_json(), ui=ui)
