"""The printed table and the JSON of a dry run."""

from __future__ import annotations

from .measure import (
    CARDS,
    CONTEXT_GIB,
    FRAGMENTATION,
    GIB,
    PEAK_BF16,
    Phase,
    breaking_phases,
    card_limit_gib,
    fits,
)

SHOWN = ("Parameter", "Gradient", "Optstate", "Activation", "Temp")


def phase_rows(phases: list[Phase], utilisation: float) -> list[dict]:
    return [{"name": p.name, "peak_gib": round(p.peak / GIB, 3),
             "by_kind": {k: round(v / GIB, 3) for k, v in p.by_kind.items() if v or k in SHOWN},
             "tflop": round(p.tflop(), 3), "predicted_s": round(p.predicted_s(utilisation), 3),
             "repeat": p.repeat, "note": p.note, "cpu_wall_s": round(p.wall_s, 1)} for p in phases]


def verdicts(phases: list[Phase]) -> dict[str, str]:
    """Per card: "fits", or "does not fit" with every phase that breaks it, its peak and the card's limit."""
    out = {}
    for card, ok in fits(phases).items():
        if ok:
            out[card] = "fits"
        else:
            broken = ", ".join(f"{p.name} {p.peak / GIB:.1f}" for p in breaking_phases(phases, card))
            out[card] = f"does not fit: {broken} GiB over the {card_limit_gib(card):.1f} GiB limit"
    return out


def result(phases: list[Phase], utilisation: float, **extra) -> dict:
    return {"phases": phase_rows(phases, utilisation), "fits": fits(phases), "verdicts": verdicts(phases),
            "predicted_step_s": round(sum(p.predicted_s(utilisation) for p in phases), 3),
            "peak_gib": round(max(p.peak for p in phases) / GIB, 3),
            "assumptions": {"gpu": "H100/H200 SXM, dense bf16 peak 989 TFLOP/s", "peak_flops": PEAK_BF16,
                            "utilisation": utilisation,
                            "fits_rule": f"peak + {CONTEXT_GIB} GiB (CUDA context) <= {FRAGMENTATION:.0%} of the "
                                         f"card's memory ({', '.join(f'{k} GB = {v} GiB' for k, v in CARDS.items())})"},
            **extra}


def table(phases: list[Phase], utilisation: float, title: str) -> str:
    lines = [title,
             f"{'phase':<12} {'peak GiB':>9} " + " ".join(f"{k[:8]:>9}" for k in SHOWN)
             + f" {'x runs':>7} {'TFLOP':>9} {'pred. s':>8}  (what was run)"]
    for p in phases:
        lines.append(f"{p.name:<12} {p.peak / GIB:>9.2f} "
                     + " ".join(f"{p.by_kind.get(k, 0) / GIB:>9.2f}" for k in SHOWN)
                     + f" {p.repeat:>7g} {p.tflop():>9.1f} {p.predicted_s(utilisation):>8.2f}  {p.note}")
    total = sum(p.predicted_s(utilisation) for p in phases)
    lines.append(f"{'total':<12} {max(p.peak for p in phases) / GIB:>9.2f} (peak of the phases)"
                 f"{'':>46} {sum(p.tflop() for p in phases):>9.1f} {total:>8.2f}")
    lines.append(f"predicted at {utilisation:.0%} of 989 TFLOP/s (H100/H200 dense bf16); "
                 + "; ".join(f"{card} GB: {v}" for card, v in verdicts(phases).items()))
    return "\n".join(lines)
