"""Which words of the perturbed prompt differ from the prompt: a word-level diff, so that the reviewer sees the
changed relations at a glance whatever the prompt style (plain, long, paraphrased)."""

from __future__ import annotations

import re
from difflib import SequenceMatcher

_TOKEN = re.compile(r"\w+|[^\w\s]+|\s+")
# "a red cube" vs "the red cube" is not a change of relation: articles never highlight on their own
_QUIET = {"a", "an", "the"}


def _key(token: str) -> str:
    return token.lower()


def diff_segments(prompt: str, perturbed: str) -> tuple[list[dict], list[dict]]:
    """([{"text", "changed"}] for the prompt, the same for the perturbed prompt). Concatenating the texts gives
    back each string exactly; "changed" marks words that are not in the other prompt at that place."""
    a, b = _TOKEN.findall(prompt), _TOKEN.findall(perturbed)
    words_a = [(i, _key(t)) for i, t in enumerate(a) if not t.isspace()]
    words_b = [(i, _key(t)) for i, t in enumerate(b) if not t.isspace()]
    changed_a, changed_b = set(), set()
    matcher = SequenceMatcher(a=[w for _, w in words_a], b=[w for _, w in words_b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        changed_a.update(words_a[k][0] for k in range(i1, i2) if words_a[k][1] not in _QUIET)
        changed_b.update(words_b[k][0] for k in range(j1, j2) if words_b[k][1] not in _QUIET)
    return _segments(a, _bridge(words_a, changed_a)), _segments(b, _bridge(words_b, changed_b))


def _bridge(words: list[tuple[int, str]], changed: set[int]) -> set[int]:
    """An article between two changed words ("to THE right of") belongs to the change: one mark, not two."""
    out = set(changed)
    for k in range(1, len(words) - 1):
        if words[k][1] in _QUIET and words[k - 1][0] in changed and words[k + 1][0] in changed:
            out.add(words[k][0])
    return out


def _segments(tokens: list[str], changed: set[int]) -> list[dict]:
    """Merge runs of tokens with the same flag; a space between two changed words is changed too (one mark)."""
    out: list[dict] = []
    for i, token in enumerate(tokens):
        flag = i in changed or (token.isspace() and i - 1 in changed and i + 1 in changed)
        if out and out[-1]["changed"] == flag:
            out[-1]["text"] += token
        else:
            out.append({"text": token, "changed": flag})
    return out
