"""Dense yes/no pretraining of the tiny shapes base VLM (all weights), on oracle-labelled streams.

The LM head predicts Yes / No at every query token of a stream (shapes_data.py). This is the "pretrained VLM"
the shapes scorer's LoRA is trained on, as Qwen2.5-VL-7B is for the real scorer. Progress is logged as JSON lines
(loss, accuracy at the first query and at the others, held-out pairwise accuracy in the scorer's format).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .shapes_data import Stream, StreamTable, build_streams, load_rows


@dataclass
class PretrainConfig:
    minutes: float = 22.0  # time budget; with steps > 0 the cosine schedule runs over steps instead
    steps: int = 0
    batch_size: int = 16
    learning_rate: float = 1.5e-3
    warmup_steps: int = 50
    train_rows: int = 4000  # pairs of the training set used (2 streams each)
    val_pairs: int = 200
    eval_every: int = 50
    seed: int = 0
    # the tiny Qwen2.5-VL (training.reward.models.tiny.save_tiny_qwen25vl)
    text_hidden: int = 96
    text_layers: int = 6
    heads: int = 4
    kv_heads: int = 2
    vision_hidden: int = 64
    vision_depth: int = 2
    rope_theta: float = 5.0
    pixels: int = 112
    # auxiliary loss: a linear probe on each image token's hidden state after decoder layer aux_position_layer
    # predicts its row and column, so image tokens learn absolute position (RoPE alone gives it only relatively)
    aux_position: float = 1.0
    # auxiliary loss: a linear probe on each colour word's hidden state after decoder layer aux_word_layer
    # regresses the centre (x, y) of that colour's object, so words learn to find their object in the image
    aux_word: float = 1.0
    # (the probes are training-only; defaults = run H of research/shapes_scorer/NOTES.md, the best so far)
    init_from: str = ""  # continue from this pretrained base folder (the tiny-model fields are then ignored)
    aux_position_layer: int = 2  # 0: text_layers // 2
    aux_word_layer: int = 3  # 0: text_layers - 1


def _hidden(vlm, batch, layer: int | None = None):
    """Last hidden state; with `layer`, also the hidden state after that decoder layer."""
    out = vlm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    mm_token_type_ids=batch["mm_token_type_ids"], pixel_values=batch["pixel_values"],
                    image_grid_thw=batch["image_grid_thw"], use_cache=False, output_hidden_states=layer is not None)
    return out.last_hidden_state if layer is None else (out.last_hidden_state, out.hidden_states[layer])


@torch.no_grad()
def pairwise_accuracy(vlm, table: StreamTable, pairs, batch_size: int = 64) -> tuple[float, dict]:
    """Held-out pairs in the scorer's format: logit(Yes) - logit(No) at the query, chosen above rejected?"""
    was = vlm.training
    vlm.eval()
    hits: dict[int, list[int]] = {}
    for i in range(0, len(pairs), batch_size // 2):
        chunk = pairs[i: i + batch_size // 2]
        streams = [s for p, c, r, n in chunk for s in (Stream(c, [p], [1], n), Stream(r, [p], [0], n))]
        b = table.batch(streams)
        h = _hidden(vlm, b)[torch.arange(len(streams)), b["first"]]
        logits = vlm.lm_head(h)[:, [table.yes_id, table.no_id]].float()
        margin = (logits[:, 0] - logits[:, 1]).view(-1, 2)
        for (_, _, _, n), row in zip(chunk, margin, strict=True):
            hits.setdefault(n, [0, 0])
            hits[n][0] += int(row[0] > row[1])
            hits[n][1] += 1
    vlm.train(was)
    total = sum(h[0] for h in hits.values()) / max(1, sum(h[1] for h in hits.values()))
    return total, {k: round(v[0] / v[1], 3) for k, v in sorted(hits.items())}


def pretrain(train_dir: Path, val_dir: Path, out: Path, cfg: PretrainConfig, progress=print) -> Path:
    """Build the tiny base, pretrain it, save it to out/pretrained (config, safetensors, processor); log."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from training.reward.models.processor import SpatialProcessor
    from training.reward.models.tiny import save_tiny_qwen25vl

    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    out.mkdir(parents=True, exist_ok=True)
    px = cfg.pixels * cfg.pixels
    if cfg.init_from:
        init = Path(cfg.init_from)
    else:
        init = save_tiny_qwen25vl(out / "init", seed=cfg.seed, text_hidden=cfg.text_hidden,
                                  text_layers=cfg.text_layers, heads=cfg.heads, kv_heads=cfg.kv_heads,
                                  vision_hidden=cfg.vision_hidden, vision_depth=cfg.vision_depth,
                                  rope_theta=cfg.rope_theta, min_pixels=px, max_pixels=px)
    vlm = Qwen2_5_VLForConditionalGeneration.from_pretrained(init, local_files_only=True, dtype=torch.float32)
    processor = SpatialProcessor.from_pretrained(init, local_files_only=True)
    table = StreamTable(processor, cfg.pixels)
    streams, _ = build_streams(table, load_rows(train_dir, ("train",))[: cfg.train_rows], train_dir, rng)
    val_rows = load_rows(val_dir, ("train", "val", "test"))[: cfg.val_pairs]
    _, val_pairs = build_streams(table, val_rows, val_dir, rng, singles=0)
    progress(f"pretrain: {sum(p.numel() for p in vlm.parameters())} parameters, {len(streams)} streams")
    side = cfg.pixels // 28
    probe = torch.nn.Linear(cfg.text_hidden, 2 * side)
    cell = torch.arange(side * side)
    rows_cols = torch.stack([cell // side, cell % side + side], 1)  # class ids: row in [0, side), col after
    word_probe = torch.nn.Linear(cfg.text_hidden, 2)
    params = list(vlm.parameters()) + list(probe.parameters()) + list(word_probe.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=0.01, betas=(0.9, 0.98))
    (out / "pretrain_config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    log = (out / "pretrain_log.jsonl").open("w")
    vlm.train()
    order, cursor, step, t0 = list(range(len(streams))), len(streams), 0, time.time()
    stats: dict[str, list[float]] = {"loss": [], "first": [], "rest": [], "aux": [], "word": []}
    budget = cfg.minutes * 60
    while time.time() - t0 < budget and (cfg.steps <= 0 or step < cfg.steps):
        frac = (time.time() - t0) / budget if cfg.steps <= 0 else step / cfg.steps
        lr = cfg.learning_rate * min(1.0, (step + 1) / cfg.warmup_steps) * (0.05 + 0.475 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if cursor + cfg.batch_size > len(order):
            rng.shuffle(order)
            cursor = 0
        chunk = [streams[i] for i in order[cursor: cursor + cfg.batch_size]]
        cursor += cfg.batch_size
        b = table.batch(chunk)
        sel = b["targets"] != -100
        fwd = vlm.model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                        mm_token_type_ids=b["mm_token_type_ids"], pixel_values=b["pixel_values"],
                        image_grid_thw=b["image_grid_thw"], use_cache=False, output_hidden_states=True)
        hidden = fwd.last_hidden_state
        middle = fwd.hidden_states[cfg.aux_position_layer or max(1, cfg.text_layers // 2)]
        late = fwd.hidden_states[cfg.aux_word_layer or max(1, cfg.text_layers - 1)]
        logits = vlm.lm_head(hidden[sel])[:, [table.yes_id, table.no_id]].float()
        target = (b["targets"][sel] == table.no_id).long()  # class 0 = Yes
        loss = torch.nn.functional.cross_entropy(logits, target)
        aux = torch.zeros(())
        if cfg.aux_position > 0:
            img = probe(middle[b["mm_token_type_ids"].bool()]).view(len(chunk), side * side, 2, side)
            tgt = rows_cols.unsqueeze(0).expand(len(chunk), -1, -1)
            tgt = tgt - torch.tensor([0, side])
            aux = torch.nn.functional.cross_entropy(img.reshape(-1, side), tgt.reshape(-1))
        word = torch.zeros(())
        has = ~torch.isnan(b["word_centres"][..., 0])
        if cfg.aux_word > 0 and has.any():
            word = torch.nn.functional.mse_loss(word_probe(late[has]), b["word_centres"][has]) * 10
        total = loss + cfg.aux_position * aux + cfg.aux_word * word
        opt.zero_grad()
        total.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        hit = (logits.argmax(1) == target).float()
        is_first = torch.zeros_like(sel)
        is_first[torch.arange(len(chunk)), b["first"]] = True
        is_first = is_first[sel]
        stats["loss"].append(loss.item())
        stats["aux"].append(aux.item())
        stats["word"].append(word.item())
        stats["first"].append(hit[is_first].mean().item())
        stats["rest"].append(hit[~is_first].mean().item())
        if step % cfg.eval_every == 0:
            acc, by_objects = pairwise_accuracy(vlm, table, val_pairs)
            rec = {"step": step, "sec": round(time.time() - t0), "lr": round(lr, 6), "grad_norm": round(float(grad_norm), 3),
                   **{k: round(sum(v) / len(v), 4) for k, v in stats.items()},
                   "val_pairwise": round(acc, 4), "val_by_objects": by_objects}
            progress(json.dumps(rec))
            log.write(json.dumps(rec) + "\n")
            log.flush()
            stats = {k: [] for k in stats}
    log.close()
    plot_pretrain_log(out / "pretrain_log.jsonl", out / "pretrain_curves.png")
    final = out / "pretrained"
    vlm.save_pretrained(final)
    processor.save_pretrained(final)
    return final


def plot_pretrain_log(log: Path, png: Path, title: str = "shapes base: dense yes/no pretraining") -> Path:
    """Loss and accuracies of a pretraining log (JSON lines) against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    steps = [r["step"] for r in recs]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(steps, [r["loss"] for r in recs], "o-", ms=3, label="yes/no loss")
    if recs and "aux" in recs[0]:
        ax_loss.plot(steps, [r["aux"] for r in recs], "o-", ms=3, label="position probe loss (aux)")
    if recs and "word" in recs[0]:
        ax_loss.plot(steps, [r["word"] for r in recs], "o-", ms=3, label="word-centre probe MSE x10 (aux)")
    ax_loss.axhline(math.log(2), color="grey", lw=0.6, ls=":")
    ax_loss.set_xlabel("step")
    ax_loss.legend(fontsize=8)
    ax_acc.plot(steps, [r["first"] for r in recs], "o-", ms=3, label="train: first statement (scorer format)")
    ax_acc.plot(steps, [r["rest"] for r in recs], "o-", ms=3, label="train: further statements")
    ax_acc.plot(steps, [r["val_pairwise"] for r in recs], "o-", ms=3, lw=2, label="held-out pairwise")
    for n in ("2", "3"):
        pts = [(r["step"], r["val_by_objects"][n]) for r in recs if n in r.get("val_by_objects", {})]
        if pts:
            ax_acc.plot(*zip(*pts, strict=True), ":", label=f"held-out pairwise, {n} objects")
    ax_acc.axhline(0.5, color="grey", lw=0.6, ls=":")
    ax_acc.axhline(0.9, color="red", lw=0.6, ls="--")
    ax_acc.set_ylim(0.3, 1.02)
    ax_acc.set_xlabel("step")
    ax_acc.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    return png
