"""The shapes-edit instructions, in one plain form each, and their parser.

    move the <colour> <shape> to the left of|to the right of|above|below the <colour> <shape>
    make the <colour> <shape> <colour>
    remove the <colour> <shape>
    add a <colour> <shape> to the left of|to the right of|above|below the <colour> <shape>
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..oracle import PromptParseError
from .scene import COLORS, SHAPES

KINDS = ("move", "recolor", "remove", "add")
PHRASE = {"left_of": "to the left of", "right_of": "to the right of", "above": "above", "below": "below"}
PREDICATE = {v: k for k, v in PHRASE.items()}
OPPOSITE = {"left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above"}

_C, _S = "|".join(COLORS), "|".join(SHAPES)
_REL = "|".join(re.escape(p) for p in PHRASE.values())
_FORMS = {
    "move": re.compile(rf"move the ({_C}) ({_S}) ({_REL}) the ({_C}) ({_S})"),
    "recolor": re.compile(rf"make the ({_C}) ({_S}) ({_C})"),
    "remove": re.compile(rf"remove the ({_C}) ({_S})"),
    "add": re.compile(rf"add an? ({_C}) ({_S}) ({_REL}) the ({_C}) ({_S})"),
}


class InstructionParseError(PromptParseError):
    """An instruction the shapes-edit oracle and scorer cannot read."""


@dataclass(frozen=True)
class Instruction:
    kind: str  # move / recolor / remove / add
    target: tuple[str, str]  # (colour, shape): the object moved, recoloured, removed, or the one added
    predicate: str | None = None  # move / add: where, relative to `reference`
    reference: tuple[str, str] | None = None
    new_color: str | None = None  # recolor

    @property
    def text(self) -> str:
        c, s = self.target
        if self.kind == "move":
            return f"move the {c} {s} {PHRASE[self.predicate]} the {self.reference[0]} {self.reference[1]}"
        if self.kind == "recolor":
            return f"make the {c} {s} {self.new_color}"
        if self.kind == "remove":
            return f"remove the {c} {s}"
        return f"add a {c} {s} {PHRASE[self.predicate]} the {self.reference[0]} {self.reference[1]}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "target": list(self.target), "predicate": self.predicate,
                "reference": list(self.reference) if self.reference else None, "new_color": self.new_color}


def parse_instruction(text: str) -> Instruction:
    """Read one plain-form instruction (case, spaces and a final full stop do not matter)."""
    if not isinstance(text, str) or not text.strip():
        raise InstructionParseError("instruction is empty")
    clean = " ".join(text.lower().replace(",", " ").split()).rstrip(".!").strip()
    for kind, form in _FORMS.items():
        m = form.fullmatch(clean)
        if m is None:
            continue
        g = m.groups()
        if kind == "recolor":
            ins = Instruction(kind, (g[0], g[1]), new_color=g[2])
            if g[2] == g[0]:
                raise InstructionParseError(f"instruction {text!r} asks for the colour the object already has")
            return ins
        if kind == "remove":
            return Instruction(kind, (g[0], g[1]))
        ins = Instruction(kind, (g[0], g[1]), PREDICATE[g[2]], (g[3], g[4]))
        if g[0] == g[3]:
            raise InstructionParseError(f"instruction {text!r} relates a {g[0]} object to a {g[0]} object; the "
                                        "shapes-edit world tells objects apart by colour, so they must differ")
        return ins
    raise InstructionParseError(
        f"cannot read instruction {text!r}: the shapes-edit world reads 'move the red circle to the left of the "
        "blue square', 'make the red circle green', 'remove the red circle' or 'add a green triangle above the "
        f"red circle' (colours {', '.join(COLORS)}; shapes {', '.join(SHAPES)}; to the left of, to the right of, "
        "above, below)")
