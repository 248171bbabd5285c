"""SpatialScore Loader: pick a scorer folder (or a plain Qwen2.5-VL for zero-shot, or the shapes demo)."""

from __future__ import annotations

import folder_paths
from comfy_api.latest import io

from .comfy.models import ComfyPlacement, compute_devices, resolve_dtype
from .logic.discovery import (
    ScorerChoiceError,
    builtin_scorers,
    folder_fingerprint,
    list_scorers,
    resolve_scorer,
)
from .logic.loading import load_handle
from .logic.scoring import builtin_scope
from .socket_types import CATEGORY, SpatialScoreModel

MODEL_FOLDER = "spatialscore"


def model_roots() -> list[str]:
    try:
        return folder_paths.get_folder_paths(MODEL_FOLDER)
    except KeyError:  # not registered (the pack's entry point registers it)
        return []


class SpatialScoreLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        names = [f.name for f in list_scorers(model_roots())]
        return io.Schema(
            node_id="SpatialScoreLoader",
            display_name="SpatialScore Loader",
            category=CATEGORY,
            description="Loads a SpatialScore reward model (or a plain Qwen2.5-VL for zero-shot scoring) from "
                        "models/spatialscore. Local folders only; nothing is downloaded.",
            inputs=[
                io.Combo.Input("scorer", options=names, default=names[0] if names else None,
                               tooltip="A folder in models/spatialscore (or a path added to 'spatialscore' in "
                                       "extra_model_paths.yaml): a trained scorer (has spatialscore.json) or a "
                                       "plain Qwen2.5-VL checkpoint (zero-shot). 'shapes' is the built-in demo; "
                                       "'shapes-gen' the built-in reward for GRPO on the shapes generator (it "
                                       "does not pay for extra objects). " + builtin_scope(builtin_scorers())),
                io.Combo.Input("dtype", options=["auto", "bf16", "fp16", "fp32"], default="auto",
                               tooltip="Weight precision. auto: bf16 on GPUs that support it, else fp16; fp32 on CPU."),
                io.Combo.Input("device", options=["auto", "cpu"], default="auto",
                               tooltip="auto: ComfyUI's compute device (the GPU), loaded only while scoring; "
                                       "cpu: always score on the CPU."),
                io.Boolean.Input("keep_loaded", default=False,
                                 tooltip="Keep the weights on the GPU after scoring (faster repeated runs). Off: "
                                         "moved back to the CPU after every Score/Rerank so Flux gets the memory. "
                                         "ComfyUI may still evict it when another model needs the room."),
                io.Int.Input("batch_size", default=8, min=1, max=256,
                             tooltip="Images scored per forward pass. Lower it if the GPU runs out of memory; "
                                     "scores do not depend on it."),
            ],
            outputs=[SpatialScoreModel.Output("scorer_model", display_name="scorer",
                                              tooltip="The loaded scorer, for Score and Rerank.")],
        )

    @classmethod
    def validate_inputs(cls, scorer) -> bool | str:
        try:
            resolve_scorer(scorer, model_roots())
        except ScorerChoiceError as exc:
            return str(exc)
        return True

    @classmethod
    def fingerprint_inputs(cls, scorer, **kwargs):
        try:
            return folder_fingerprint(resolve_scorer(scorer, model_roots()))
        except ScorerChoiceError:
            return scorer

    @classmethod
    def execute(cls, scorer, dtype, device, keep_loaded, batch_size) -> io.NodeOutput:
        load_device, offload_device = compute_devices(device)
        torch_dtype, dtype_name = resolve_dtype(dtype, load_device)
        handle = load_handle(scorer, model_roots(), offload_device=offload_device, dtype=torch_dtype,
                             dtype_name=dtype_name, keep_loaded=keep_loaded, batch_size=batch_size,
                             placement_factory=lambda s: ComfyPlacement(s, load_device, offload_device))
        return io.NodeOutput(handle)
