"""Edit reward nodes (SpatialReward): load an edit scorer, score edited images against their source and
instruction, and rerank edit candidates (best-of-N for Flux Kontext, Qwen-Image-Edit, inpainting...)."""

from __future__ import annotations

from comfy_api.latest import io

from .comfy.models import ComfyPlacement, compute_devices, resolve_dtype
from .common import progress_callback, ui_payload, widget_errors
from .loader import model_roots
from .logic.annotate import format_score, score_lines
from .logic.discovery import ScorerChoiceError
from .logic.edit_scoring import (
    EditTable,
    check_source,
    draw_regions,
    list_edit_scorers,
    load_edit_handle,
    resolve_edit_scorer,
    score_edit_batch,
)
from .logic.prompts import PROMPT_MODES
from .logic.ranking import RANK_BY
from .logic.rerank import rerank
from .logic.scoring import check_image_batch
from .logic.widget_limits import accept
from .socket_types import CATEGORY

SpatialScoreEditModel = io.Custom("SPATIALSCORE_EDIT_MODEL")


def _edit_inputs() -> list[io.Input]:
    return [
        SpatialScoreEditModel.Input("edit_scorer", tooltip="An edit scorer from the SpatialScore Edit Loader node."),
        io.Image.Input("source", tooltip="The image before editing: one for the whole edited batch, or one per "
                                         "edited image (a different count is an error)."),
        io.Image.Input("edited", tooltip="The edited images (a batch of candidates); each is scored on its own."),
        io.String.Input("instruction", multiline=True, default="",
                        tooltip="The edit instruction. One line for all edited images, or one line per image. The "
                                "built-in shapes-edit scorer reads only its plain forms, e.g. 'move the red circle "
                                "to the left of the blue square'."),
        io.Combo.Input("instruction_mode", options=list(PROMPT_MODES), default="auto",
                       tooltip="auto: one line for all, or one per image. same for all: the whole text is one "
                               "instruction. one per line: always one line per edited image."),
    ]


def _labels(table: EditTable) -> list[str]:
    return [format_score(m, s) for m, s in zip(table.mean.tolist(), table.std.tolist(), strict=True)]


class SpatialScoreEditLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        names = [f.name for f in list_edit_scorers(model_roots())]
        return io.Schema(
            node_id="SpatialScoreEditLoader",
            display_name="SpatialScore Edit Loader",
            category=CATEGORY,
            description="Loads an edit reward model (SpatialReward) from models/spatialscore: a trained edit scorer "
                        "(spatialreward.json), a generative judge folder, or a plain local Qwen2.5-VL / Qwen3-VL "
                        "chat model used as a judge. Local folders only; nothing is downloaded.",
            inputs=[
                io.Combo.Input("edit_scorer", options=names, default=names[0] if names else None,
                               tooltip="'shapes-edit' is the built-in demo (flat shapes only). Other choices are "
                                       "folders in models/spatialscore (or paths from extra_model_paths.yaml)."),
                io.Combo.Input("dtype", options=["auto", "bf16", "fp16", "fp32"], default="auto",
                               tooltip="Weight precision. auto: what ComfyUI picks for the device; fp32 on CPU."),
                io.Combo.Input("device", options=["auto", "cpu"], default="auto",
                               tooltip="auto: ComfyUI's compute device, loaded only while scoring; cpu: always CPU."),
                io.Boolean.Input("keep_loaded", default=False,
                                 tooltip="Keep the weights on the GPU after scoring (faster repeated runs)."),
                io.Int.Input("batch_size", default=8, min=1, max=256,
                             tooltip="Edits scored per forward pass (a generative judge answers one at a time)."),
            ],
            outputs=[SpatialScoreEditModel.Output("edit_scorer_model", display_name="edit_scorer",
                                                  tooltip="The loaded edit scorer, for Edit Score and Edit Rerank.")],
        )

    @classmethod
    def validate_inputs(cls, edit_scorer) -> bool | str:
        try:
            resolve_edit_scorer(edit_scorer, model_roots())
        except ScorerChoiceError as exc:
            return str(exc)
        return True

    @classmethod
    def execute(cls, edit_scorer, dtype, device, keep_loaded, batch_size) -> io.NodeOutput:
        load_device, offload_device = compute_devices(device)
        torch_dtype, dtype_name = resolve_dtype(dtype, load_device)
        handle = load_edit_handle(edit_scorer, model_roots(), offload_device=offload_device, dtype=torch_dtype,
                                  dtype_name=dtype_name, keep_loaded=keep_loaded, batch_size=batch_size,
                                  placement_factory=lambda s: ComfyPlacement(s, load_device, offload_device))
        return io.NodeOutput(handle)


class SpatialScoreEditScore(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpatialScoreEditScore",
            display_name="SpatialScore Edit Score",
            category=CATEGORY,
            description="Scores how well each edited image carries out the instruction on the source image, and "
                        "nothing else: per-image reward, its uncertainty, where the edit happened, and a "
                        "generative judge's reasoning.",
            is_output_node=True,
            inputs=_edit_inputs(),
            outputs=[
                io.Float.Output("scores", display_name="scores", is_output_list=True,
                                tooltip="Per edited image: the reward mean (higher: a better edit)."),
                io.Float.Output("stds", display_name="stds", is_output_list=True,
                                tooltip="Per edited image: the reward's std (0 for a generative judge)."),
                io.Image.Output("preview", display_name="preview",
                                tooltip="The edited images with the predicted edit regions outlined and the score."),
                io.String.Output("reasoning", display_name="reasoning", is_output_list=True,
                                 tooltip="Per edited image: a generative judge's reasoning (empty for a trained "
                                         "scorer)."),
            ],
        )

    @classmethod
    def execute(cls, edit_scorer, source, edited, instruction, instruction_mode) -> io.NodeOutput:
        n = check_image_batch(edited, "edited")
        check_source(source, n)
        table = score_edit_batch(edit_scorer, source, edited, instruction, instruction_mode,
                                 progress=progress_callback(n))
        mean, std = table.mean.tolist(), table.std.tolist()
        preview = draw_regions(edited, table.regions, _labels(table))
        lines = [f"SpatialScore edit {edit_scorer.describe()}"] + score_lines(mean, std, prompts=table.instructions)
        lines += [f"[{i}] {text}" for i, text in enumerate(table.reasoning) if text]
        return io.NodeOutput(mean, std, preview, table.reasoning,
                             ui=ui_payload(cls, preview, mean, std, lines, prompts=table.instructions))


class SpatialScoreEditRerank(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpatialScoreEditRerank",
            display_name="SpatialScore Edit Rerank (best-of-N)",
            category=CATEGORY,
            description="Scores every edit candidate against the source and instruction and keeps the top_k, best "
                        "first.",
            is_output_node=True,
            inputs=[
                *_edit_inputs(),
                io.Int.Input("top_k", default=1, min=1, max=4096,
                             tooltip="How many edited images to keep; more than the batch keeps all, sorted."),
                io.Combo.Input("rank_by", options=list(RANK_BY), default="mean",
                               tooltip="mean: the reward mean. mean - lambda*std: risk-averse."),
                io.Float.Input("risk_lambda", default=1.0, min=0.0, max=100.0, step=0.05,
                               tooltip="lambda in mean - lambda*std (ignored when ranking by mean)."),
            ],
            outputs=[
                io.Image.Output("top_images", display_name="top_images", tooltip="The top_k edited images, best "
                                                                                  "first."),
                io.Float.Output("top_scores", display_name="top_scores", is_output_list=True,
                                tooltip="Their reward means, best first."),
                io.Float.Output("top_stds", display_name="top_stds", is_output_list=True,
                                tooltip="Their uncertainties (std)."),
                io.Int.Output("indices", display_name="indices", is_output_list=True,
                              tooltip="Their positions in the edited batch (0-based)."),
            ],
        )

    @classmethod
    def validate_inputs(cls, risk_lambda) -> bool:
        # ComfyUI checks top_k's limits itself (validate_inputs does not take it), but a NaN passes any float limit
        return accept(widget_errors(cls, {"risk_lambda": risk_lambda}))

    @classmethod
    def execute(cls, edit_scorer, source, edited, instruction, instruction_mode, top_k, rank_by,
                risk_lambda) -> io.NodeOutput:
        n = check_image_batch(edited, "edited")
        check_source(source, n)
        table = score_edit_batch(edit_scorer, source, edited, instruction, instruction_mode,
                                 progress=progress_callback(n))
        best = rerank(table, edited, top_k, rank_by, risk_lambda)
        r = best.ranking
        mean, std, order = r.mean.tolist(), r.std.tolist(), r.indices.tolist()
        ui = ui_payload(cls, best.images, mean, std, [f"SpatialScore edit {edit_scorer.describe()}: "
                                                      f"{best.report[0]}", *best.report[1:]],
                        indices=order, prompts=best.prompts, utility=r.utility.tolist())
        return io.NodeOutput(best.images, mean, std, order, ui=ui)
