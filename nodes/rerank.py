"""SpatialScore Rerank (best-of-N): keep the top_k images by absolute score, with their latents and masks."""

from __future__ import annotations

from comfy_api.latest import io
from comfy_execution.graph_utils import ExecutionBlocker

from .common import images_input, progress_callback, prompt_inputs, scorer_input, ui_payload, widget_errors
from .logic.ranking import RANK_BY
from .logic.rerank import check_carried, rerank
from .logic.scoring import check_image_batch, score_images, warning_lines
from .logic.widget_limits import accept
from .socket_types import CATEGORY


class SpatialScoreRerank(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpatialScoreRerank",
            display_name="SpatialScore Rerank (best-of-N)",
            category=CATEGORY,
            description="Scores every candidate image and keeps the top_k, best first, carrying the matching "
                        "latents and masks along in the same order.",
            is_output_node=True,
            inputs=[
                scorer_input(), images_input(), *prompt_inputs(),
                io.Int.Input("top_k", default=1, min=1, max=4096,
                             tooltip="How many images to keep. More than the batch keeps the whole batch, sorted."),
                io.Combo.Input("rank_by", options=list(RANK_BY), default="mean",
                               tooltip="mean: the reward mean. mean - lambda*std: risk-averse, prefers images the "
                                       "scorer is sure about."),
                io.Float.Input("risk_lambda", default=1.0, min=0.0, max=100.0, step=0.05,
                               tooltip="lambda in mean - lambda*std (ignored when ranking by mean)."),
                io.Latent.Input("latent", optional=True,
                                tooltip="The latents the images were decoded from (one per image, same order); "
                                        "reordered with the images, e.g. for a second sampling pass."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Masks of the images (one per image, or one for all); reordered with them."),
            ],
            outputs=[
                io.Image.Output("top_images", display_name="top_images",
                                tooltip="The top_k images, best first."),
                io.Latent.Output("top_latent", display_name="top_latent",
                                 tooltip="Their latents, in the same order (needs the latent input)."),
                io.Mask.Output("top_mask", display_name="top_mask",
                               tooltip="Their masks, in the same order (needs the mask input)."),
                io.Float.Output("top_scores", display_name="top_scores", is_output_list=True,
                                tooltip="Their reward means, best first."),
                io.Float.Output("top_stds", display_name="top_stds", is_output_list=True,
                                tooltip="Their uncertainties (std)."),
                io.Int.Output("indices", display_name="indices", is_output_list=True,
                              tooltip="Their positions in the input batch (0-based)."),
            ],
        )

    @classmethod
    def validate_inputs(cls, risk_lambda) -> bool:
        # ComfyUI checks top_k's limits itself (validate_inputs does not take it), but a NaN passes any float limit
        return accept(widget_errors(cls, {"risk_lambda": risk_lambda}))

    @classmethod
    def execute(cls, scorer, images, prompt, prompt_mode, top_k, rank_by, risk_lambda, latent=None,
                mask=None) -> io.NodeOutput:
        n = check_image_batch(images)
        check_carried(n, latent, mask)  # before spending time on scoring
        table = score_images(scorer, images, prompt, prompt_mode, progress=progress_callback(n))
        best = rerank(table, images, top_k, rank_by, risk_lambda, latent=latent, mask=mask)
        r = best.ranking
        mean, std, order = r.mean.tolist(), r.std.tolist(), r.indices.tolist()
        # a warning heads the text (by batch index, as the report names images); the badges follow the ranking
        lines = [*warning_lines(table.warnings), f"SpatialScore {scorer.describe()}: {best.report[0]}",
                 *best.report[1:]]  # fmt: skip
        kept_warnings = [table.warnings[i] for i in order] if table.warnings else None
        ui = ui_payload(cls, best.images, mean, std, lines, indices=order, prompts=best.prompts,
                        utility=r.utility.tolist(), warnings=kept_warnings)  # fmt: skip
        return io.NodeOutput(best.images, _or_blocked(best.latent, "top_latent", "LATENT", "latent"),
                             _or_blocked(best.mask, "top_mask", "MASK", "mask"), mean, std, order, ui=ui)


def _or_blocked(value, output: str, kind: str, input_name: str):
    """The value, or a blocker that gives nodes reading an output whose input was left empty a clear error."""
    if value is not None:
        return value
    return ExecutionBlocker(f"SpatialScore Rerank: {output} is empty because no {kind} was connected to its "
                            f"{input_name} input")
