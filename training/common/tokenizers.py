"""Pieces for building small, deterministic byte-level BPE vocabularies in code (tiny CLIP and Qwen2 tokenizers).

Trained tokenizers were not reproducible across processes; a vocabulary written out by hand is, and needs only the
byte alphabet and a merge chain per whole word.
"""

from __future__ import annotations

from collections.abc import Sequence


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map, which byte-level BPE vocabularies (CLIP's, Qwen2's)
    are written in."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def add_merge_chain(symbols: Sequence[str], vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """Merges that build the whole word `symbols` left to right (((s0 s1) s2) ...), adding each new token to
    `vocab`; prefixes another word already added are reused, not merged again."""
    current = symbols[0]
    for sym in symbols[1:]:
        merged = current + sym
        if merged not in vocab:
            vocab[merged] = len(vocab)
            merges.append((current, sym))
        current = merged
