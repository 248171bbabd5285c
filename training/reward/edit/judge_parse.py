"""Reading a generative judge's answer: JSON when it is JSON, and as much as can be recovered when it is not.

Expected (the pack's template asks for it; SpatialReward-style judges answer like it):
    {"edit_regions": [{"box": [x0, y0, x1, y1], "label": "..."}], "reasoning": "...",
     "instruction_success": 0-10, "over_editing": 0-10}
and, from the quality pass, {"naturalness": 0-10, "artifacts": 0-10}. Boxes are in 0-1000 coordinates.

Repairs, in order: code fences and text around the outermost {...} are dropped; single quotes, trailing commas,
Python literals and unquoted keys are fixed; a cut-off answer gets its brackets closed. When no JSON object comes
out, scores and boxes are picked out of the text by pattern. Nothing raises: problems are listed in the result.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

ALIASES = {
    "instruction_success": ("instruction_success", "success", "instruction_following", "semantic_consistency",
                            "editing_success"),
    "over_editing": ("over_editing", "overediting", "over_edit", "over-editing", "preservation"),
    "naturalness": ("naturalness", "natural", "perceptual_quality"),
    "artifacts": ("artifacts", "artifact", "no_artifacts", "artifact_free"),
}
REGION_KEYS = ("edit_regions", "regions", "edit_region", "boxes", "bboxes")
REASON_KEYS = ("reasoning", "reason", "analysis", "explanation", "thought")
_NUMBER = r"-?\d+(?:\.\d+)?"
_BOX = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")


@dataclass
class JudgeAnswer:
    scores: dict = field(default_factory=dict)  # canonical name -> float in [0, score_max]
    regions: list = field(default_factory=list)  # boxes [x0, y0, x1, y1] in 0..1
    labels: list = field(default_factory=list)
    reasoning: str = ""
    ok: bool = False  # a JSON object was read (possibly after repairs)
    problems: list = field(default_factory=list)


def _outer_objects(text: str) -> list[str]:
    """Candidates: the first balanced {...}, then from the first "{" to the end (a cut-off answer), then to the
    last "}"."""
    start = text.find("{")
    if start < 0:
        return []
    depth, in_string, balanced = 0, False, []
    for i in range(start, len(text)):  # the first balanced {...}: an answer followed by more text
        ch = text[i]
        if ch == '"' and text[i - 1] != "\\":
            in_string = not in_string
        elif not in_string and ch == "{":
            depth += 1
        elif not in_string and ch == "}":
            depth -= 1
            if depth == 0:
                balanced = [text[start:i + 1]]
                break
    end = text.rfind("}")
    return balanced + [text[start:]] + ([text[start:end + 1]] if end > start else [])


def _repairs(candidate: str):
    yield candidate
    fixed = re.sub(r",\s*([}\]])", r"\1", candidate)
    fixed = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", fixed)))
    yield fixed
    quoted = re.sub(r"(?<=[{,])\s*([A-Za-z_][\w\- ]*)\s*:", r'"\1":', fixed.replace("'", '"'))
    yield quoted
    closers = []  # close what a cut-off answer left open
    in_string = False
    for i, ch in enumerate(quoted):
        if ch == '"' and (i == 0 or quoted[i - 1] != "\\"):
            in_string = not in_string
        elif not in_string and ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif not in_string and ch in "}]" and closers:
            closers.pop()
    tail = quoted + ('"' if in_string else "")
    tail = re.sub(r",\s*$", "", tail.rstrip())
    yield tail + "".join(reversed(closers))


def _load(text: str) -> dict | None:
    for candidate in _outer_objects(re.sub(r"```(?:json)?", "", text)):
        for attempt in _repairs(candidate):
            try:
                value = json.loads(attempt)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    return None


def _scores_by_pattern(text: str, answer: JudgeAnswer, score_max: float) -> None:
    for canon, names in ALIASES.items():
        if canon in answer.scores:
            continue
        for name in names:
            m = re.search(rf"{re.escape(name)}\W{{0,3}}\s*[:=]?\s*({_NUMBER})", text, re.IGNORECASE)
            if m:
                answer.scores[canon] = min(score_max, max(0.0, float(m.group(1))))
                break


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.search(_NUMBER, value)
        return float(m.group()) if m else None
    if isinstance(value, dict):
        for key in ("score", "value"):
            if key in value:
                return _number(value[key])
    return None


def _box01(values) -> list[float] | None:
    try:
        x0, y0, x1, y1 = (float(v) for v in values)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):  # json reads NaN and 1e999; clamping hid them
        return None
    box = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
    box = [min(1.0, max(0.0, v / 1000.0)) for v in box]
    return box if box[2] > box[0] and box[3] > box[1] else None


def _find(obj: dict, names) -> object:
    lowered = {str(k).lower().strip(): v for k, v in obj.items()}
    for name in names:
        if name in lowered:
            return lowered[name]
    for v in obj.values():  # one level of nesting ({"scores": {...}})
        if isinstance(v, dict):
            found = _find(v, names)
            if found is not None:
                return found
    return None


def parse_judge_output(text: str, score_max: float = 10.0) -> JudgeAnswer:
    answer = JudgeAnswer()
    if not isinstance(text, str) or not text.strip():
        answer.problems.append("empty output")
        return answer
    obj = _load(text)
    if obj is not None:
        answer.ok = True
        for canon, names in ALIASES.items():
            value = _number(_find(obj, names))
            if value is not None:
                answer.scores[canon] = min(score_max, max(0.0, value))
        regions = _find(obj, REGION_KEYS)
        for item in regions if isinstance(regions, list) else []:
            raw = item.get("box", item.get("bbox", item.get("bbox_2d"))) if isinstance(item, dict) else item
            box = _box01(raw) if isinstance(raw, (list, tuple)) and len(raw) == 4 else None
            if box is not None:
                answer.regions.append(box)
                answer.labels.append(str(item.get("label", "")) if isinstance(item, dict) else "")
        reason = _find(obj, REASON_KEYS)
        answer.reasoning = reason if isinstance(reason, str) else ""
    else:
        answer.problems.append("no JSON object in the output; scores read by pattern")
        for m in _BOX.finditer(text):
            box = _box01(m.groups())
            if box is not None:
                answer.regions.append(box)
                answer.labels.append("")
        answer.reasoning = text.strip()[:2000]
    _scores_by_pattern(text, answer, score_max)  # whatever the JSON lacked (or all of it, without JSON)
    missing = [k for k in ("instruction_success", "over_editing") if k not in answer.scores]
    if missing:
        answer.problems.append(f"missing score(s): {', '.join(missing)}")
    return answer
