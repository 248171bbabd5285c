"""Server-side checks of a node's widget values against the limits its schema declares, and the one-error answer
of `validate_inputs`.

ComfyUI 0.3.64 checks a widget's min and max itself only for inputs that the node's `validate_inputs` does not
take (execution.py, validate_inputs): a node whose `validate_inputs` takes an input, or **kwargs, gets no check for
it, so a saved or hand-written workflow can carry n = 100000 past a widget whose max is 256. The limits here are
read from the schema's inputs, never repeated.

A string returned by `validate_inputs` is reported once per input the method takes ("Custom validation failed for
node: <input> - <message>" for each: about 30 identical lines in the dialog for a node with 30 inputs); an
exception raised there is reported once ("Exception when validating node: <message>"). So the nodes raise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


class InvalidInputs(ValueError):
    """Every problem of a node's inputs, on one line."""


def limit_errors(inputs: Iterable, values: dict) -> list[str]:
    """One line per number widget (an input with min or max) whose value is not finite or lies outside its limits;
    inputs not in `values` (or None: a link, during validation) are not checked."""
    errors = []
    for spec in inputs:
        low, high = getattr(spec, "min", None), getattr(spec, "max", None)
        value = values.get(spec.id)
        if (low is None and high is None) or value is None or isinstance(value, bool):
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            errors.append(f"{spec.id}: {value!r} is not a finite number")
        elif low is not None and value < low:
            errors.append(f"{spec.id}: {value} is below its minimum {low}")
        elif high is not None and value > high:
            errors.append(f"{spec.id}: {value} is above its maximum {high}")
    return errors


def not_named(errors: list[str], more: list[str]) -> list[str]:
    """`errors`, then the lines of `more` about inputs that `errors` does not name yet (each line starts "input:")."""
    named = {line.split(":", 1)[0] for line in errors}
    return errors + [line for line in more if line.split(":", 1)[0] not in named]


def accept(errors: list[str]) -> bool:
    """`validate_inputs`' answer: True, or one InvalidInputs carrying every problem, so the dialog shows it once."""
    if errors:
        raise InvalidInputs("; ".join(errors))
    return True
