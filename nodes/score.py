"""SpatialScore Score: per-image absolute spatial scores (mean and std) for a whole image batch."""

from __future__ import annotations

from comfy_api.latest import io

from .common import images_input, progress_callback, prompt_inputs, scorer_input, ui_payload
from .logic.annotate import badge_label, draw_badges, score_lines
from .logic.scoring import check_image_batch, score_images, warning_lines
from .socket_types import CATEGORY


class SpatialScoreScore(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpatialScoreScore",
            display_name="SpatialScore Score Images",
            category=CATEGORY,
            description="Scores how well each image shows the spatial relations of its prompt. Absolute scores: "
                        "an image's score does not depend on the rest of the batch.",
            is_output_node=True,
            inputs=[scorer_input(), images_input(), *prompt_inputs()],
            outputs=[
                io.Float.Output("scores", display_name="scores", is_output_list=True,
                                tooltip="Per-image reward mean, in batch order (higher: relations more faithful)."),
                io.Float.Output("stds", display_name="stds", is_output_list=True,
                                tooltip="Per-image uncertainty (std of the predicted Gaussian reward); 0 in "
                                        "zero-shot mode."),
                io.Image.Output("preview", display_name="preview",
                                tooltip="The images with their score drawn on them."),
            ],
        )

    @classmethod
    def execute(cls, scorer, images, prompt, prompt_mode) -> io.NodeOutput:
        n = check_image_batch(images)
        table = score_images(scorer, images, prompt, prompt_mode, progress=progress_callback(n))
        mean, std = table.mean.tolist(), table.std.tolist()
        warnings = list(table.warnings) or [""] * n
        preview = draw_badges(images, [badge_label(m, s, w) for m, s, w in zip(mean, std, warnings, strict=True)],
                              warned=[bool(w) for w in warnings])  # fmt: skip
        # a warning heads the text: the scores under it mean little
        lines = warning_lines(warnings) + [f"SpatialScore {scorer.describe()}"]
        lines += score_lines(mean, std, prompts=table.prompts)
        return io.NodeOutput(mean, std, preview,
                             ui=ui_payload(cls, images, mean, std, lines, prompts=table.prompts, warnings=warnings))
