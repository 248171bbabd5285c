"""report.json and report.md of an evaluation, and the one line that heads them (the node's badge says it too)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ...common.atomic import write_text
from .statistics import BOOTSTRAP, DECISIVE

ORACLE_COLUMNS = (("oracle_objects_ok", "(a) objects drawn"), ("oracle_relation_ok", "(b) each relation"),
                  ("oracle_all_ok", "(c) all relations"), ("oracle_clean", "clean picture"),
                  ("oracle_clean_all_ok", "(c) in a clean picture"))  # fmt: skip
METHOD = (f"Paired per prompt: every variant drew image j of prompt i from the same noise; per prompt, B's win is the "
          f"share of its images that beat A's (a tie counts a half), and the win rate is the mean over prompts. "
          f"Intervals: 95% percentile bootstrap over prompts ({BOOTSTRAP} resamples). Pairwise judge: both images in "
          f"one chat, asked in both orders, preference (P(Yes | B first) + 1 - P(Yes | A first)) / 2; B wins a pair "
          f"above 1/2. Decisive: the scorer's Gaussians give P(B > A) >= {DECISIVE} or <= {1 - DECISIVE:.2f}.")


def headline(report: dict) -> str:
    """'shapes-grpo beats base on 63.0% of 400 prompts [58.1, 67.8] by the scorer' for the first LoRA."""
    pair = next((p for p in report["pairs"] if p["a"] == "base"), None)
    if pair is None:
        return f"{report['variants'][0]}: mean score {report['per_variant'][report['variants'][0]]['score_mean']:.3f}"
    s = pair["scorer"]
    return (f"{pair['b']} beats {pair['a']} on {_pct(s['win_rate'])} of {s['prompts']} prompts "
            f"[{_pct(s['low'], '')}, {_pct(s['high'], '')}] by the scorer")


def write_report(report: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "report.json", json.dumps(_finite(report), indent=1) + "\n")
    write_text(out / "report.md", markdown(report))
    return out / "report.json", out / "report.md"


def markdown(report: dict) -> str:
    names = report["variants"]
    lines = ["# Generator evaluation", "", f"**{headline(report)}**", ""]
    for key, label in (("prompt_set", "prompt set"), ("model", "model"), ("scorer", "scorer"), ("seed", "seed"),
                       ("settings", "sampling"), ("seconds", "time (s)")):  # fmt: skip
        if key in report:
            lines.append(f"- {label}: {_plain(report[key])}")
    lines.append(f"- {report['prompts']} prompts x {report['images_per_prompt']} image(s) per variant; variants: "
                 + ", ".join(f"`{n}`" for n in names))  # fmt: skip
    lines += ["", "## Per variant", ""]
    header = ["variant", "score mean ± std", f"confident (std ≤ {report['confident_std']:g})", "out-of-world images"]
    if report["oracle"]:
        header += [label for _, label in ORACLE_COLUMNS]
    lines += _table_head(header)
    for name in names:
        v = report["per_variant"][name]
        confident = "n/a (no std)" if v["confident_share"] is None else _pct(v["confident_share"])
        cells = [f"`{name}`", f"{v['score_mean']:.3f} ± {v['score_std']:.3f}", confident, str(v["out_of_world_images"])]
        if report["oracle"]:
            cells += [_pct(v["oracle"].get(key), digits=2) for key, _ in ORACLE_COLUMNS]  # as sample_eval's figures
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Pairs (B against A)", "", METHOD, ""]
    header = ["B vs A", "scorer: B wins [95%]", "mean gain [95%]", "decisive", "pairwise judge: B wins [95%]"]
    if report["oracle"]:
        header.append("oracle (c): B wins [95%]")
    lines += _table_head(header)
    for pair in report["pairs"]:
        s, j = pair["scorer"], pair["judge"]
        judged = _win(j) if "win_rate" in j else f"not available: {j.get('why', '')}"
        cells = [f"`{pair['b']}` vs `{pair['a']}`", _win(s), f"{s['mean_gain']:+.3f} [{s['gain_low']:+.3f}, "
                 f"{s['gain_high']:+.3f}]", _pct(s.get("decisive_share")), judged]  # fmt: skip
        if report["oracle"]:
            o = pair["oracle_all_ok"]
            cells.append(f"{_win(o)} ({_pct(o['a_rate'], digits=2)} -> {_pct(o['b_rate'], digits=2)})")
        lines.append("| " + " | ".join(cells) + " |")
    for key, title in (("per_relation", "Per relation word"), ("per_objects", "Per number of objects")):
        lines += _group_table(report, key, title)
    pictures = report.get("pictures") or []
    if pictures:
        lines += ["", "## Largest gains and losses by the scorer", ""]
        for picture in pictures:
            lines += [f"![{picture}]({picture})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _group_table(report: dict, key: str, title: str) -> list[str]:
    names, rows = report["variants"], report[key]
    lines = ["", f"## {title}", ""]
    if not rows:
        return lines + ["(none found)"]
    pairs = [(p["a"], p["b"]) for p in report["pairs"]]
    header = ["", "prompts"] + [f"`{n}` score" for n in names]
    if report["oracle"]:
        header += [f"`{n}` oracle (c)" for n in names]
    header += [f"`{b}` vs `{a}`: scorer wins" for a, b in pairs]
    if any("judge" in e for row in rows.values() for e in row["pairs"]):
        header += [f"`{b}` vs `{a}`: judge wins" for a, b in pairs]
    lines += _table_head(header)
    for group, row in rows.items():
        cells = [group, str(row["prompts"])] + [f"{row['score_mean'][n]:.3f}" for n in names]
        if report["oracle"]:
            cells += [_pct(row["oracle_all_ok"][n]) for n in names]
        cells += [_win(e["scorer"]) for e in row["pairs"]]
        cells += [_win(e["judge"]) for e in row["pairs"] if "judge" in e]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _table_head(header: list[str]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]


def _win(s: dict) -> str:
    return f"{_pct(s['win_rate'])} [{_pct(s['low'], '')}, {_pct(s['high'], '')}]"


def _pct(x, unit: str = "%", digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{100 * x:.{digits}f}{unit}"


def _plain(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def _finite(value):
    """NaN and infinities become null: report.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
