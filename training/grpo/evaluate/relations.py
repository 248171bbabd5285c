"""Which relation words a prompt uses and how many objects it names: the report's per-relation and per-count rows.

Relation words are found by phrase (longest first, each stretch of text counted once), and their many wordings are
folded into one name: "to the left of", "on the left of" and "left of" are all "left of". A prompt may have several.
The object count comes from the source where it states one (GenEval's "include"), else from the shapes oracle's
reading of a shapes-world prompt, else it is unknown: counting nouns in free text would be a guess.
"""

from __future__ import annotations

import re

# (name in the report, wordings); "on" and "in" alone are left out: in free text they are mostly not spatial
RELATIONS = (
    ("left of", ("to the left of", "on the left of", "on the left side of", "left of", "to the left")),
    ("right of", ("to the right of", "on the right of", "on the right side of", "right of", "to the right")),
    ("above", ("above", "over", "higher up than", "on the top of", "on top of", "atop")),
    ("below", ("below", "on the bottom of", "at the bottom of", "lower down than")),
    ("under", ("under", "underneath", "beneath")),
    ("behind", ("behind", "in the back of", "at the back of")),
    ("in front of", ("in front of", "before")),
    ("next to", ("next to", "beside", "on side of", "alongside", "adjacent to")),
    ("near", ("near", "close to", "by")),
    ("between", ("between", "among", "amid")),
    ("inside", ("inside", "within", "in the middle of")),
    ("on", ("on", "resting on", "sitting on", "lying on", "standing on", "placed on")),
)  # fmt: skip
_SINGLE_WORD_FALSE_FRIENDS = {"on", "by", "before", "over"}  # counted only right before "a/an/the/its/his/her/their"
_PHRASES = sorted(((w, name) for name, words in RELATIONS for w in words), key=lambda p: -len(p[0]))
_PATTERN = re.compile(r"\b(" + "|".join(re.escape(w) for w, _ in _PHRASES) + r")\b(?=(?:\s+(\w+))?)", re.IGNORECASE)
_NAME_OF = {w: name for w, name in _PHRASES}
_DETERMINERS = {"a", "an", "the", "its", "his", "her", "their", "top", "one", "two", "three"}


def relation_words(prompt: str) -> list[str]:
    """The relation names a prompt uses, each once, in order of first use."""
    found: list[str] = []
    for match in _PATTERN.finditer(prompt):
        word, following = match.group(1).lower(), (match.group(2) or "").lower()
        if word in _SINGLE_WORD_FALSE_FRIENDS and following not in _DETERMINERS:
            continue  # "on a table" counts, "on display" / "by the way"-style phrases mostly do not
        name = _NAME_OF[word]
        if name not in found:
            found.append(name)
    return found


def object_count(prompt: str, stated: int | None = None) -> int | None:
    """How many objects the prompt names: `stated` by its source, else the shapes oracle's reading, else None."""
    if stated is not None:
        return stated
    from training.dataset.oracle import PromptParseError, parse_prompt

    try:
        relations = parse_prompt(prompt)
    except PromptParseError:
        return None
    return len({obj for r in relations for obj in (r.subject, r.object)}) or None
