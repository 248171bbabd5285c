"""A node's widgets declared once: a table of `Widget`s, from which the rest is made.

From one table a node gets its V3 schema inputs (`nodes/common.py`'s `widget_inputs`, which only maps each entry to
`io.Int.Input`, `io.Float.Input`, ...), the names its `validate_inputs` and `execute` read, the settings dataclass
its checks take (`settings_class`), and the limits those checks use (`Widget.min` / `Widget.max`; the server-side
range check, logic/widget_limits.py, reads them back from the schema). No ComfyUI import: the tables and the checks
over them are tested without ComfyUI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, make_dataclass


@dataclass(frozen=True)
class Widget:
    """One widget input. `kind` is int, float, str or bool; a str with `options` is a combo (options `()`: the node
    supplies them, e.g. ComfyUI's samplers or the user's files). Fields left None are not given to the schema."""

    name: str
    kind: type
    default: object
    tooltip: str
    min: float | None = None
    max: float | None = None
    step: float | None = None
    round: float | None = None
    multiline: bool | None = None
    control_after_generate: bool | None = None
    options: tuple[str, ...] | None = None
    # an input added after a release: optional in the schema, so saved workflows without it still queue, and its
    # default where a workflow does not give it (widget_values)
    optional: bool | None = None

    def schema_options(self) -> dict:
        """The keyword arguments of the schema input (besides its name and, for a combo, its choices)."""
        keys = ("default", "min", "max", "step", "round", "multiline", "control_after_generate", "tooltip", "optional")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


def names(widgets: Iterable[Widget]) -> tuple[str, ...]:
    return tuple(w.name for w in widgets)


def limits(widgets: Iterable[Widget], *wanted: str) -> dict[str, tuple[float, float]]:
    """{name: (min, max)} of the `wanted` widgets, as the table declares them."""
    table = {w.name: w for w in widgets}
    return {name: (table[name].min, table[name].max) for name in wanted}


def settings_class(name: str, widgets: Sequence[Widget], module: str, doc: str) -> type:
    """A dataclass with one field per widget, in the table's order (so positional construction follows it too)."""
    cls = make_dataclass(name, [(w.name, w.kind) for w in widgets])
    cls.__module__, cls.__doc__ = module, doc
    return cls


def widget_values(widgets: Iterable[Widget], values: dict) -> dict:
    """The widgets' entries of `values` (the inputs ComfyUI hands a node), by name; an optional widget's default
    where `values` lacks it."""
    return {w.name: values.get(w.name, w.default) if w.optional else values[w.name] for w in widgets}
