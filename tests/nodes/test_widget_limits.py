"""Widget values re-checked against the limits the schema declares (ComfyUI 0.3.64 checks none of the inputs a
node's validate_inputs takes), and validate_inputs' one-error answer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nodes.logic.widget_limits import InvalidInputs, accept, limit_errors, not_named

SCHEMA = [SimpleNamespace(id="n", min=1, max=256), SimpleNamespace(id="cfg", min=0.0, max=100.0),
          SimpleNamespace(id="seed", min=0, max=None), SimpleNamespace(id="prompt"),
          SimpleNamespace(id="resume", min=None, max=None)]  # fmt: skip


@pytest.mark.parametrize("values, expected", [
    ({"n": 100000}, ["n: 100000 is above its maximum 256"]),
    ({"n": 0}, ["n: 0 is below its minimum 1"]),
    ({"cfg": float("nan")}, ["cfg: nan is not a finite number"]),
    ({"cfg": float("inf")}, ["cfg: inf is not a finite number"]),
    ({"n": 300, "cfg": -1.0}, ["n: 300 is above its maximum 256", "cfg: -1.0 is below its minimum 0.0"]),
    ({"n": 256, "cfg": 1.0, "seed": 2**64, "prompt": "x" * 10**6, "resume": True}, []),
    ({"n": None, "model": None}, []),  # a linked input is None during validation; not a widget value
])  # fmt: skip
def test_values_outside_the_schema_limits(values, expected):
    assert limit_errors(SCHEMA, values) == expected


def test_one_exception_carries_every_problem():
    assert accept([]) is True
    with pytest.raises(InvalidInputs) as exc:
        accept(["n: 100000 is above its maximum 256", "keep: 0 is below its minimum 1"])
    assert str(exc.value) == "n: 100000 is above its maximum 256; keep: 0 is below its minimum 1"
    assert isinstance(exc.value, ValueError)


def test_limit_lines_join_a_nodes_own_lines_only_for_inputs_they_do_not_name():
    own = ["width: 72 is not a multiple of 16", "images_per_prompt: 100000; expected 1 to 64"]
    limits = ["images_per_prompt: 100000 is above its maximum 64", "seed: -1 is below its minimum 0"]
    assert not_named(own, limits) == [*own, "seed: -1 is below its minimum 0"]
    assert not_named([], limits) == limits
