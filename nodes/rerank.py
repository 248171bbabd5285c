"""SpatialScore Rerank (best-of-N): keep the top_k images by absolute score, with their latents and masks."""

from __future__ import annotations

from comfy_api.latest import io
from comfy_execution.graph_utils import ExecutionBlocker

from .common import images_input, progress_callback, prompt_inputs, scorer_input, ui_payload
from .logic.annotate import score_lines
from .logic.ranking import RANK_BY, check_latent, check_mask, rank, take_images, take_latent, take_mask
from .logic.scoring import check_image_batch, score_images
from .types import CATEGORY


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
                io.Image.Output("top_images", tooltip="The top_k images, best first."),
                io.Latent.Output("top_latent", tooltip="Their latents, in the same order (needs the latent input)."),
                io.Mask.Output("top_mask", tooltip="Their masks, in the same order (needs the mask input)."),
                io.Float.Output("top_scores", is_output_list=True, tooltip="Their reward means, best first."),
                io.Float.Output("top_stds", is_output_list=True, tooltip="Their uncertainties (std)."),
                io.Int.Output("indices", is_output_list=True,
                              tooltip="Their positions in the input batch (0-based)."),
            ],
        )

    @classmethod
    def execute(cls, scorer, images, prompt, prompt_mode, top_k, rank_by, risk_lambda, latent=None,
                mask=None) -> io.NodeOutput:
        n = check_image_batch(images)
        # Check the carried batches before spending time on scoring.
        if latent is not None:
            check_latent(latent, n)
        if mask is not None:
            check_mask(mask, n)
        table = score_images(scorer, images, prompt, prompt_mode, progress=progress_callback(n))
        ranking = rank(table.mean, table.std, top_k, rank_by, risk_lambda)
        idx = ranking.indices
        top = take_images(images, idx)
        out_latent = take_latent(latent, idx, n) if latent is not None else ExecutionBlocker(
            "SpatialScore Rerank: top_latent is empty because no LATENT was connected to its latent input")
        out_mask = take_mask(mask, idx, n) if mask is not None else ExecutionBlocker(
            "SpatialScore Rerank: top_mask is empty because no MASK was connected to its mask input")
        mean, std, order = ranking.mean.tolist(), ranking.std.tolist(), idx.tolist()
        full = rank(table.mean, table.std, n, rank_by, risk_lambda)
        lines = [f"SpatialScore {scorer.describe()}: top {len(order)} of {n} by {rank_by}"
                 + (f" (lambda {risk_lambda:g})" if rank_by != "mean" else "")]
        lines += score_lines(full.mean, full.std, indices=full.indices, prompts=[table.prompts[i] for i in full.indices])
        prompts = [table.prompts[i] for i in order]
        return io.NodeOutput(top, out_latent, out_mask, mean, std, order,
                             ui=ui_payload(cls, top, mean, std, lines, indices=order, prompts=prompts,
                                           utility=ranking.utility.tolist()))
