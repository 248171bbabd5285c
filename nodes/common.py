"""What the nodes share: the scorer, image and prompt inputs, the schema inputs of a widget table
(logic/widgets.py), the range check of number widgets, the progress bar, the UI payload."""

from __future__ import annotations

import uuid

import comfy.utils
import folder_paths
from comfy_api.latest import io

from .logic.annotate import badge_payload, save_preview_pngs
from .logic.prompts import PROMPT_MODES
from .logic.widget_limits import limit_errors
from .logic.widgets import Widget
from .socket_types import SpatialScoreModel


def scorer_input() -> io.Input:
    return SpatialScoreModel.Input("scorer", tooltip="A scorer from the SpatialScore Loader node.")


def images_input() -> io.Input:
    return io.Image.Input("images", tooltip="The image batch to score; every image is scored, in batches of the "
                                            "loader's batch_size.")


def prompt_inputs() -> list[io.Input]:
    return [
        io.String.Input("prompt", multiline=True, default="",
                        tooltip="The text the images should show. One line for the whole batch, or one line per "
                                "image in batch order. A different count is an error."),
        io.Combo.Input("prompt_mode", options=list(PROMPT_MODES), default="auto",
                       tooltip="auto: one line for all images, or one line per image. same for all: the whole text "
                               "is one prompt (for long prompts over several lines). one per line: always one line "
                               "per image."),
    ]


_INPUTS = {int: io.Int, float: io.Float, str: io.String, bool: io.Boolean}


def widget_inputs(widgets: list[Widget], options: dict[str, list[str]] | None = None) -> list[io.Input]:
    """The schema inputs of a widget table, in its order; `options` gives the choices of combos whose choices the
    node supplies (ComfyUI's samplers, the user's files)."""
    inputs = []
    for w in widgets:
        if w.options is not None:
            choices = (options or {}).get(w.name, w.options)
            inputs.append(io.Combo.Input(w.name, options=list(choices), **w.schema_options()))
        else:
            inputs.append(_INPUTS[w.kind].Input(w.name, **w.schema_options()))
    return inputs


def widget_errors(cls, values: dict) -> list[str]:
    """The node's number widgets outside the limits its schema declares (the server does not check them for inputs
    that validate_inputs takes, see logic/widget_limits.py)."""
    return limit_errors(cls.define_schema().inputs, values)


def progress_callback(n_images: int):
    """ComfyUI's progress bar, updated after each scored batch; its hook raises when the user presses Cancel."""
    bar = comfy.utils.ProgressBar(n_images)

    def update(done: int, total: int) -> None:
        bar.update_absolute(done, total)

    return update


def ui_payload(cls, preview_images, mean, std, text_lines, indices=None, prompts=None, utility=None,
               warnings=None) -> dict:
    """The node's UI output: the preview images (in ComfyUI's temp folder, as its PreviewImage does, each with its
    score record in the PNG's metadata instead of the workflow), per-image score records for the badge extension,
    and text. `warnings` are per preview image, in its order."""
    rows = badge_payload(mean, std, indices=indices, prompts=prompts, utility=utility, warnings=warnings)
    names = save_preview_pngs(preview_images, rows, folder_paths.get_temp_directory(),
                              f"spatialscore_preview_{uuid.uuid4().hex[:12]}")  # fmt: skip
    return {"images": [{"filename": name, "subfolder": "", "type": "temp"} for name in names], "animated": (False,),
            "spatialscore": rows, "text": ["\n".join(text_lines)]}
