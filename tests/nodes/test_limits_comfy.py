"""Server-side limits on ComfyUI's own classes, in process (run with ComfyUI's venv python):

- every number widget of every node is range-checked on the server: by ComfyUI when the node's validate_inputs
  does not take it, else by validate_inputs against the limits the schema declares, with one exception (ComfyUI
  reports a returned string once per input validate_inputs takes);
- the memory guard reads the same sizes from the shapes generator that ComfyUI loaded as from its diffusers folder,
  and refuses a best-of-N that cannot fit.

Skipped with the reason when ComfyUI does not import in this python (run with .comfyui/venv/bin/python).
"""

from __future__ import annotations

import asyncio
import inspect
import math

import pytest

from .comfy_inprocess import import_comfy

REASON = import_comfy()
pytestmark = [pytest.mark.skipif(bool(REASON), reason=REASON or "ComfyUI importable"), pytest.mark.real_parts]


def _node_classes():
    from nodes.extension import SpatialScoreExtension

    return asyncio.run(SpatialScoreExtension().get_node_list())


def _takes(cls, name: str) -> bool:
    """Whether ComfyUI hands `name` to the node's validate_inputs (and so skips its own min/max check of it)."""
    from comfy_api.internal import first_real_override

    method = first_real_override(cls, "validate_inputs")
    if method is None:
        return False
    spec = inspect.getfullargspec(method)
    return name in spec.args or spec.varkw is not None


def _defaults(schema) -> dict:
    values = {}
    for spec in schema.inputs:
        if getattr(spec, "options", None):
            values[spec.id] = spec.default if spec.default is not None else spec.options[0]
        elif getattr(spec, "default", None) is not None:
            values[spec.id] = spec.default
    return values


def _validate(cls, values: dict):
    """Call validate_inputs as ComfyUI does: with the inputs it takes."""
    from comfy_api.internal import first_real_override

    spec = inspect.getfullargspec(first_real_override(cls, "validate_inputs"))
    taken = values if spec.varkw is not None else {k: v for k, v in values.items() if k in spec.args}
    return cls.validate_inputs(**taken)


def _out_of_range(spec) -> list:
    bad = []
    if spec.max is not None:
        bad.append(spec.max + 1)
    if spec.min is not None:
        bad.append(spec.min - 1)
    if isinstance(spec.default, float):
        bad.append(math.nan)
    return bad


def _refusal(cls, values: dict, name: str, value) -> str | None:
    """None when validate_inputs refuses `value` for `name` with one InvalidInputs naming it, else what it did."""
    from nodes.logic.widget_limits import InvalidInputs

    try:
        answer = _validate(cls, values)
    except InvalidInputs as exc:
        if str(exc).startswith(f"{name}: {value}"):
            return None
        return f"refused, but not naming it first: {exc}"
    except Exception as exc:  # noqa: BLE001 - reported below with the node and input
        return f"raised {type(exc).__name__}: {exc} (use nodes.logic.widget_limits.accept)"
    return f"answered {answer!r} (a string is reported once per input; use accept(widget_errors(cls, values)))"


def test_every_number_widget_is_range_checked_on_the_server_once():
    problems, checked = [], []
    for cls in _node_classes():
        schema = cls.define_schema()
        for spec in schema.inputs:
            if getattr(spec, "min", None) is None and getattr(spec, "max", None) is None:
                continue
            if not _takes(cls, spec.id):
                continue  # ComfyUI 0.3.64 checks min and max of inputs validate_inputs does not take
            for value in _out_of_range(spec):
                problem = _refusal(cls, {**_defaults(schema), spec.id: value}, spec.id, value)
                if problem:
                    problems.append(f"{cls.__name__}.{spec.id} = {value}: {problem}")
                checked.append((cls.__name__, spec.id))
    assert problems == []
    names = {name for name, _ in checked}
    assert {"SpatialScoreBestOfNSampler", "SpatialScoreGRPOTrain", "SpatialScoreRerank"} <= names
    assert ("SpatialScoreBestOfNSampler", "n") in checked and ("SpatialScoreGRPOTrain", "width") in checked


def test_the_workflow_values_of_the_examples_pass():
    from nodes.bestofn import SpatialScoreBestOfNSampler
    from nodes.grpo import SpatialScoreGRPOTrain

    bestofn = {**_defaults(SpatialScoreBestOfNSampler.define_schema()), "prompt": "a red circle", "n": 16,
               "width": 64, "height": 64}  # fmt: skip
    assert _validate(SpatialScoreBestOfNSampler, {**bestofn, "model": None, "vae": None}) is True
    grpo = {**_defaults(SpatialScoreGRPOTrain.define_schema()), "prompts": "a red circle\na blue square"}
    assert _validate(SpatialScoreGRPOTrain, grpo) is True


@pytest.fixture(scope="module")
def shapes():
    import torch

    from nodes.comfy.shapes_generator import load_shapes_generator

    torch.set_num_threads(1)
    model, clip, vae = load_shapes_generator("shapes")
    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a red circle to the left of a blue square"))
    return model, vae, positive


def test_the_sizes_comfyui_loaded_are_the_folders_sizes(shapes):
    from nodes.logic.memory_check import comfy_sizes
    from training.common.memory_guard import flux_folder_sizes
    from training.grpo.shipped import GENERATORS

    model, vae, positive = shapes
    theirs = comfy_sizes(model, vae, positive)
    ours = flux_folder_sizes(GENERATORS["shapes"], act_bytes=4, text_tokens=40)
    assert theirs == ours.__class__(**{**ours.__dict__, "weight_bytes": 0})


def test_best_of_n_that_cannot_fit_is_refused_on_the_real_objects(shapes):
    from nodes.logic.memory_check import check_best_of_n
    from training.common.memory_guard import GIB, Free, MemoryLimitError

    model, vae, positive = shapes
    ram = Free(4 * GIB, 4 * GIB, "RAM")
    check_best_of_n(model, vae, positive, 16, 64, 64, 1.0, ram)
    with pytest.raises(MemoryLimitError, match=r"^n=256 at 8192x8192 needs about [0-9.]+ GiB, 4\.0 GiB free in RAM: "
                                               r"not even n=1 fits at 8192x8192; at most \d+x\d+ fits at n=1$"):
        check_best_of_n(model, vae, positive, 256, 8192, 8192, 1.0, ram)
