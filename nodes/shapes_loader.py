"""SpatialScore Shapes Generator Loader: the shipped small FLUX.1 (the shapes world) as MODEL, CLIP and VAE.

ComfyUI's stock loaders cannot load a Flux this small; nodes/comfy/shapes_generator.py builds the three with
ComfyUI's own classes. For the CPU examples (GRPO, best-of-N) that run in minutes.
"""

from __future__ import annotations

from comfy_api.latest import io

from .comfy.shapes_generator import SHAPES_NAME, WEIGHT_DTYPES, load_shapes_generator, resolve_shapes_folder
from .socket_types import CATEGORY


class SpatialScoreShapesGeneratorLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpatialScoreShapesGeneratorLoader",
            display_name="SpatialScore Shapes Generator Loader",
            category=CATEGORY,
            description="Loads the shipped shapes generator (a 64x64 FLUX.1 of the shapes world, 6 steps, no "
                        "guidance) as ComfyUI's MODEL, CLIP and VAE. Runs on a CPU.",
            inputs=[
                io.Combo.Input("generator", options=[SHAPES_NAME], default=SHAPES_NAME,
                               tooltip="'shapes': the generator shipped with the pack (64x64 px, 6 sampling steps, "
                                       "guidance 0). The path of a FluxPipeline folder of the same small kind also "
                                       "works."),
                io.Combo.Input("weight_dtype", options=list(WEIGHT_DTYPES), default="default", optional=True,
                               tooltip="How the MODEL's weights are stored, as UNETLoader's weight_dtype: 'default' "
                                       "float32; fp8_e4m3fn / fp8_e5m2 store them in 8 bits and cast each to float32 "
                                       "where it is used. GRPO Train then trains its LoRA (float32) through them."),
            ],
            outputs=[
                io.Model.Output("model", display_name="MODEL", tooltip="The shapes FLUX transformer."),
                io.Clip.Output("clip", display_name="CLIP", tooltip="Its CLIP + T5 text encoders."),
                io.Vae.Output("vae", display_name="VAE", tooltip="Its VAE (4x, 8 latent channels)."),
            ],
        )

    @classmethod
    def validate_inputs(cls, generator, weight_dtype="default") -> bool | str:
        if weight_dtype not in WEIGHT_DTYPES:  # V3 combo values are not validated by the server
            return f"weight_dtype: {weight_dtype!r}; expected one of {', '.join(WEIGHT_DTYPES)}"
        try:
            resolve_shapes_folder(generator)
        except ValueError as exc:
            return f"generator: {exc}"
        return True

    @classmethod
    def execute(cls, generator, weight_dtype="default") -> io.NodeOutput:
        model, clip, vae = load_shapes_generator(generator, weight_dtype=weight_dtype)
        return io.NodeOutput(model, clip, vae)
