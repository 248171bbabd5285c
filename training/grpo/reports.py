"""What a run leaves for people to read: metrics.jsonl, a reward-curve PNG and sample grids of the eval prompts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from ..common.atomic import atomic_path, write_text

GRID_CELL = 256  # pixels per image in a sample grid (tiny images are upscaled, large ones downscaled)


class MetricsLog:
    """metrics.jsonl, one JSON object per GRPO step; on resume, records after the checkpoint are dropped."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def records(self) -> list[dict]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a kill: everything before it is good
        return out

    def truncate_after(self, step: int) -> None:
        """Keep the records of steps <= `step` (what the checkpoint being resumed from has seen)."""
        kept = [r for r in self.records() if r.get("step", 0) <= step]
        write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(clean) + "\n")


def plot_reward_curve(records: list[dict], path: str | Path) -> Path:
    """Reward mean +- std per step, the kept samples' mean and the eval-prompt reward; when the run has an oracle,
    a second panel with its held-out rates (all relations, each relation, objects drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if r.get("reward_mean") is not None]
    oracle = [r for r in records if r.get("oracle_all_ok") is not None]
    fig, axes = plt.subplots(1, 2 if oracle else 1, figsize=(12 if oracle else 7, 4), dpi=100, squeeze=False)
    ax = axes[0][0]
    if train:
        steps = [r["step"] for r in train]
        mean = [r["reward_mean"] for r in train]
        std = [r.get("reward_std") or 0.0 for r in train]
        ax.plot(steps, mean, label="reward (all samples)", color="tab:blue")
        ax.fill_between(steps, [m - s for m, s in zip(mean, std, strict=True)],
                        [m + s for m, s in zip(mean, std, strict=True)], color="tab:blue", alpha=0.15)
        kept = [(r["step"], r["kept_reward_mean"]) for r in train if r.get("kept_reward_mean") is not None]
        if kept:
            ax.plot(*zip(*kept, strict=True), label="reward (kept top/bottom-k)", color="tab:orange", alpha=0.7)
    evals = [(r["step"], r["eval_reward_mean"]) for r in records if r.get("eval_reward_mean") is not None]
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="reward (eval prompts, fixed noise)", color="tab:green")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("reward")
    ax.set_title("Spatial GRPO reward")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if oracle:
        ax = axes[0][1]
        steps = [r["step"] for r in oracle]
        for key, label, style in (("oracle_all_ok", "(c) all relations hold", "o-"),
                                  ("oracle_all_ok_3obj", "(c) 3 objects", "s--"),
                                  ("oracle_relation_ok", "(b) each relation", "^-"),
                                  ("oracle_objects_ok", "(a) objects drawn in colour", "d:"),
                                  ("oracle_clean_all_ok", "(c) in a clean picture (no extra objects)", "x-."),
                                  ("oracle_clean", "clean picture", "+:")):  # fmt: skip
            values = [r.get(key) for r in oracle]
            if all(v is not None for v in values):
                ax.plot(steps, [100 * v for v in values], style, label=label)
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("held-out rate (%)")
        ax.set_ylim(0, 100)
        ax.set_title("pixel oracle on held-out prompts (never the reward)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def save_comparison_grid(rows: list[tuple[str, torch.Tensor]], prompts: list[str], path: str | Path,
                         marks: dict[str, list[bool]] | None = None, cell: int = 160) -> Path:
    """Rows of images [N, H, W, 3] of the same prompts (columns), a label per row, prompts underneath; `marks`
    (per row label, per column) draws a green (True) or red (False) frame, e.g. the oracle's verdict."""
    font = ImageFont.load_default()
    label_w, caption_h = 150, 64
    n = len(prompts)
    grid = Image.new("RGB", (label_w + cell * n, cell * len(rows) + caption_h), "white")
    draw = ImageDraw.Draw(grid)
    for r, (label, images) in enumerate(rows):
        for k, line in enumerate(_wrap(label, 22)[:3]):
            draw.text((4, r * cell + cell // 2 - 8 + 14 * k), line, fill="black", font=font)
        for i in range(n):
            pixels = (images[i].clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
            img = Image.fromarray(pixels).resize((cell - 8, cell - 8), Image.NEAREST)
            x, y = label_w + i * cell, r * cell
            if marks is not None and label in marks:
                draw.rectangle([x + 1, y + 1, x + cell - 2, y + cell - 2], outline="green" if marks[label][i] else "red",
                               width=3)  # fmt: skip
            grid.paste(img, (x + 4, y + 4))
    for i, prompt in enumerate(prompts):
        for k, line in enumerate(_wrap(prompt, 26)[:4]):
            draw.text((label_w + i * cell + 2, cell * len(rows) + 2 + 15 * k), line, fill="black", font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        grid.save(tmp, format="PNG")
    return path


def save_sample_grid(images: torch.Tensor, prompts: list[str], scores: list[float] | None, path: str | Path,
                     title: str = "") -> Path:
    """A row of images [N, H, W, 3] (0..1) with each prompt (and score) written under its image."""
    n = images.shape[0]
    font = ImageFont.load_default()
    caption_h, title_h = 64, (20 if title else 0)
    grid = Image.new("RGB", (GRID_CELL * n, title_h + GRID_CELL + caption_h), "white")
    draw = ImageDraw.Draw(grid)
    if title:
        draw.text((4, 4), title, fill="black", font=font)
    for i in range(n):
        pixels = (images[i].clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        img = Image.fromarray(pixels)
        img = img.resize((GRID_CELL, GRID_CELL), Image.NEAREST if img.width < GRID_CELL else Image.LANCZOS)
        grid.paste(img, (i * GRID_CELL, title_h))
        text = prompts[i] if scores is None else f"{scores[i]:+.3f}  {prompts[i]}"
        lines = _wrap(text, 40)[:4]
        for k, line in enumerate(lines):
            draw.text((i * GRID_CELL + 4, title_h + GRID_CELL + 2 + 15 * k), line, fill="black", font=font)
    path = Path(path)
    with atomic_path(path) as tmp:
        grid.save(tmp, format="PNG")
    return path


def _wrap(text: str, width: int) -> list[str]:
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return lines + ([current] if current else [])
