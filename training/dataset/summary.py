"""Counts that describe a dataset folder: by split, perturbation count, relation type, operation, generator;
verification results; and a check that no scene appears in two splits."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable


def _sorted(counter: Counter) -> dict:
    return {str(k): counter[k] for k in sorted(counter, key=lambda k: (str(type(k)), k))}


def summarize(rows: Iterable[dict], dropped: list[dict] | None = None) -> dict:
    dropped = dropped or []
    by_split, by_n, by_rel, by_op, by_gen = Counter(), Counter(), Counter(), Counter(), Counter()
    scene_splits: dict[str, set] = defaultdict(set)
    prompt_splits: dict[str, set] = defaultdict(set)
    stated = Counter()
    oracle = Counter()
    margins = []
    for r in rows:
        by_split[r.get("split")] += 1
        by_n[r.get("perturbations")] += 1
        by_gen[r.get("generator")] += 1
        for c in r.get("changed", []):
            by_rel[c.get("before", {}).get("predicate")] += 1
            by_op[c.get("op")] += 1
        scene_splits[r.get("scene_id")].add(r.get("split"))
        prompt_splits[r.get("plain_prompt", r.get("prompt"))].add(r.get("split"))
        for rel in (r.get("scene") or {}).get("relations", []):
            stated[rel.get("predicate")] += 1
        v = (r.get("verification") or {}).get("oracle")
        if v:
            oracle["checked"] += 1
            oracle["chosen_confirmed"] += bool(v.get("chosen"))
            oracle["rejected_rejected"] += bool(v.get("rejected"))
        s = (r.get("verification") or {}).get("scorer")
        if s:
            margins.append(s["margin"])
    summary = {
        "pairs": sum(by_split.values()),
        "scenes": len(scene_splits),
        "by_split": _sorted(by_split),
        "scenes_by_split": _sorted(Counter(next(iter(s)) for s in scene_splits.values() if len(s) == 1)),
        "by_perturbations": _sorted(by_n),
        "by_relation_type": _sorted(by_rel),
        "by_operation": _sorted(by_op),
        "by_generator": _sorted(by_gen),
        "stated_relations": _sorted(stated),
        "scenes_in_several_splits": sum(len(s) > 1 for s in scene_splits.values()),
        "prompts_in_several_splits": sum(len(s) > 1 for s in prompt_splits.values()),
        "dropped": len(dropped),
        "dropped_by_reason": _sorted(Counter(d.get("reason") for d in dropped)),
    }
    if oracle:
        summary["oracle"] = dict(oracle)
    if margins:
        summary["scorer"] = {"checked": len(margins), "mean_margin": round(sum(margins) / len(margins), 6),
                             "min_margin": round(min(margins), 6)}
    return summary


def _line(name: str, counts: dict) -> str:
    return f"{name}: " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none")


def format_summary(s: dict) -> str:
    lines = [f"pairs: {s['pairs']} from {s['scenes']} scenes",
             _line("by split", s["by_split"]),
             _line("scenes by split", s["scenes_by_split"]),
             _line("by perturbation count", s["by_perturbations"]),
             _line("changed relation types", s["by_relation_type"]),
             _line("by operation", s["by_operation"]),
             _line("by generator", s["by_generator"]),
             _line("stated relation types", s["stated_relations"]),
             f"scenes in more than one split: {s['scenes_in_several_splits']}; "
             f"prompts in more than one split: {s['prompts_in_several_splits']}",
             f"dropped candidates: {s['dropped']}" + (f" ({_line('reasons', s['dropped_by_reason'])[9:]})"
                                                     if s["dropped"] else "")]
    if "oracle" in s:
        o = s["oracle"]
        lines.append(f"oracle (at build): chosen confirmed {o['chosen_confirmed']}/{o['checked']}, "
                     f"rejected rejected {o['rejected_rejected']}/{o['checked']}")
    if "oracle_recheck" in s:
        o = s["oracle_recheck"]
        lines.append(f"oracle (re-read from the image files): chosen confirmed {o['chosen_confirmed']}/{o['checked']}, "
                     f"rejected fail the prompt {o['rejected_fail_prompt']}/{o['checked']}, rejected fail exactly the "
                     f"changed relations {o['rejected_exact']}/{o['checked']}")
        if o.get("skipped_unreadable"):
            lines.append(f"oracle re-check skipped {o['skipped_unreadable']} pairs with unreadable images: "
                         + "; ".join(o["unreadable"][:5]) + (" ..." if o["skipped_unreadable"] > 5 else ""))
    if "scorer" in s:
        sc = s["scorer"]
        lines.append(f"scorer margin (chosen - rejected): mean {sc['mean_margin']}, min {sc['min_margin']} "
                     f"over {sc['checked']} pairs")
    if "reviews" in s:
        r = s["reviews"]
        lines.append(f"human review: {r['reviewed']}/{s['pairs']} reviewed: {r['accept']} accepted, {r['reject']} "
                     f"rejected, {r['swap']} swapped; {r['skip']} skipped, {r['unreviewed']} not looked at "
                     "(training drops the rejected and swaps the swapped; --reviewed-only keeps accepted + swapped)")
    if s.get("complete") is False:
        lines.append("INCOMPLETE: fewer pairs than asked passed verification (see the warning above)")
    for key in ("resumed", "seconds"):
        if key in s:
            lines.append(f"{key}: {s[key]}")
    return "\n".join(lines)
