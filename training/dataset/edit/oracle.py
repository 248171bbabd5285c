"""The shapes-edit pixel oracle: did an edit follow its instruction, and what else changed?

From pixels alone (`find_objects` of the shapes oracle: objects found by hue, one per colour): every colour's
object is found in the source and in the edited image, its shape is read from how much of its box it fills
(square ~0.97, circle ~0.78, triangle ~0.6 at 64 pixels), and each colour is compared between the two images: appeared,
disappeared, moved (centre shifted by more than a fifth of its size), resized or reshaped. The instruction is
followed when its own change happened (the target moved and now stands where asked / was recoloured in place /
is gone / a new object of that colour and shape stands where asked) and nothing else changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from ..oracle import COLORS, Blob, analysis_size, find_objects, relation_holds
from .instructions import Instruction, parse_instruction

MOVE_FRACTION = 0.2  # of the object's size
MOVE_MIN = 0.04  # of the canvas
RESIZE = 0.3  # relative area change
RECOLOR_IOU = 0.6  # the new colour's object must stand where the old one stood


def shape_of(blob: Blob) -> str:
    """circle / square / triangle from the fraction of its bounding box the blob fills."""
    fill = blob.area / max(1.0, blob.w * blob.h)
    return "square" if fill > 0.9 else "circle" if fill > 0.71 else "triangle"


def _box(blob: Blob, w: int, h: int) -> list[float]:
    return [round(blob.x0 / w, 4), round(blob.y0 / h, 4), round(blob.x1 / w, 4), round(blob.y1 / h, 4)]


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class EditVerdict:
    instruction: str
    followed: bool
    problems: list[str] = field(default_factory=list)  # why the instruction's own edit is not there
    other_changes: list[str] = field(default_factory=list)  # changes the instruction did not ask for
    regions: list[list[float]] = field(default_factory=list)  # where the images differ (boxes in 0..1)

    @property
    def instruction_done(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"instruction": self.instruction, "followed": self.followed, "instruction_done": self.instruction_done,
                "problems": self.problems, "other_changes": self.other_changes, "regions": self.regions}


def _analyse(image) -> tuple[dict[str, Blob | None], int, int]:
    from training.common.images import load_image_file, to_pil_list

    objects = find_objects(image, COLORS)
    if isinstance(image, Image.Image):
        size = image.size
    elif isinstance(image, str) or hasattr(image, "__fspath__"):
        size = load_image_file(image).size
    else:
        size = to_pil_list(image)[0].size
    return objects, *analysis_size(*size)  # the frame find_objects measured boxes in


def _changes(before: dict, after: dict, w: int, h: int) -> dict[str, list[str]]:
    """Per colour, what changed between the two images (empty list: unchanged)."""
    out = {}
    for c in COLORS:
        a, b = before.get(c), after.get(c)
        what = []
        if a is None and b is not None:
            what.append("appeared")
        elif a is not None and b is None:
            what.append("disappeared")
        elif a is not None and b is not None:
            size = max(a.w, a.h, b.w, b.h)
            shift = ((a.cx - b.cx) ** 2 + (a.cy - b.cy) ** 2) ** 0.5
            if shift > max(MOVE_FRACTION * size, MOVE_MIN * max(w, h)):
                what.append("moved")
            if abs(b.area / max(1, a.area) - 1) > RESIZE:
                what.append("resized")
            if shape_of(a) != shape_of(b):
                what.append(f"reshaped ({shape_of(a)} -> {shape_of(b)})")
        out[c] = what
    return out


def _regions(before: dict, after: dict, changes: dict, w: int, h: int) -> list[list[float]]:
    boxes: list[list[float]] = []
    for c, what in changes.items():
        if not what:
            continue
        for blob in (before.get(c), after.get(c)):
            if blob is not None:
                box = _box(blob, w, h)
                if all(box_iou(box, o) < 0.8 for o in boxes):
                    boxes.append(box)
    return sorted(boxes)


def judge_edit(instruction: str | Instruction, source, edited) -> EditVerdict:
    """Whether `edited` follows `instruction` applied to `source` (PIL images, arrays, tensors or paths)."""
    ins = parse_instruction(instruction) if isinstance(instruction, str) else instruction
    before, w, h = _analyse(source)
    after, _, _ = _analyse(edited)
    changes = _changes(before, after, w, h)
    problems: list[str] = []
    color, shape = ins.target
    own = {color} | ({ins.new_color} if ins.new_color else set())

    def named(c, s):
        return f"the {c} {s}"

    def needs_in_source(c, s):
        blob = before.get(c)
        if blob is None:
            problems.append(f"the source has no {c} object")
        elif shape_of(blob) != s:
            problems.append(f"the source's {c} object is a {shape_of(blob)}, not a {s}")

    if ins.kind in ("move", "recolor", "remove"):
        needs_in_source(color, shape)
    if ins.reference:
        needs_in_source(*ins.reference)
    tgt, ref = after.get(color), after.get(ins.reference[0]) if ins.reference else None
    if ins.kind == "move" and not problems:
        if tgt is None:
            problems.append(f"{named(color, shape)} is gone")
        else:
            if "moved" not in changes[color]:
                problems.append(f"{named(color, shape)} did not move")
            if not relation_holds(ins.predicate, tgt, ref):
                problems.append(f"{named(color, shape)} is not {ins.text.split(shape, 1)[1].strip()}")
    elif ins.kind == "recolor" and not problems:
        new = after.get(ins.new_color)
        if before.get(ins.new_color) is not None:
            problems.append(f"the source already has a {ins.new_color} object")
        if tgt is not None:
            problems.append(f"{named(color, shape)} is still (partly) {color}")
        if new is None:
            problems.append(f"there is no {ins.new_color} object in the edited image")
        elif before.get(color) is not None and box_iou(_box(new, w, h), _box(before[color], w, h)) < RECOLOR_IOU:
            problems.append(f"the {ins.new_color} object is not where {named(color, shape)} was")
        elif shape_of(new) != shape:
            problems.append(f"the {ins.new_color} object is a {shape_of(new)}, not a {shape}")
    elif ins.kind == "remove" and not problems:
        if tgt is not None:
            problems.append(f"{named(color, shape)} is still there")
    elif ins.kind == "add" and not problems:
        if before.get(color) is not None:
            problems.append(f"the source already has a {color} object")
        if tgt is None:
            problems.append(f"no {color} object was added")
        else:
            if shape_of(tgt) != shape:
                problems.append(f"the added {color} object is a {shape_of(tgt)}, not a {shape}")
            if ref is None or not relation_holds(ins.predicate, tgt, ref):
                problems.append(f"the {color} {shape} is not {ins.text.split(shape, 1)[1].strip()}")
    other = [f"the {c} object {', '.join(what)}" for c, what in changes.items() if what and c not in own]
    return EditVerdict(ins.text, not problems and not other, problems, other,
                       _regions(before, after, changes, w, h))
