"""Dense pretraining of the tiny shapes base VLM: one image, many judged statements per sequence.

Each sequence is the scorer's chat (image first, then the prompt, then the query token "Answer") followed by
more statements about the same image, each closed by "Answer" and its verdict. The LM head predicts Yes/No at
every "Answer"; every verdict comes from the shapes oracle. Full weights, AdamW, cosine schedule, a time budget.

    python research/shapes_scorer/pretrain_dense.py --data DATA --val HELDOUT --out OUT --minutes 20
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from yesno_data import IMAGE_FIRST_TEMPLATE, ExampleTable, build_streams, load_rows, stream_batch  # noqa: E402

from training.reward.tiny import save_tiny_qwen25vl  # noqa: E402

QUERY = "Answer"


def answer_logits(vlm, batch):
    hidden = vlm.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                       mm_token_type_ids=batch["mm_token_type_ids"], pixel_values=batch["pixel_values"],
                       image_grid_thw=batch["image_grid_thw"], use_cache=False).last_hidden_state
    return hidden


@torch.no_grad()
def pairwise_eval(vlm, table, pairs, yes_no, bs=64):
    """Held-out pairs in the scorer's format: score = logit(Yes) - logit(No) at the query; chosen > rejected?"""
    from yesno_data import Stream
    was = vlm.training
    vlm.eval()
    correct = {2: [0, 0], 3: [0, 0]}
    for i in range(0, len(pairs), bs // 2):
        chunk = pairs[i: i + bs // 2]
        st = []
        for prompt, c, r, n in chunk:
            st += [Stream(c, [prompt], [1], n), Stream(r, [prompt], [0], n)]
        b = stream_batch(table, st, yes_no[0], yes_no[1], 0)
        h = answer_logits(vlm, b)
        last = b["attention_mask"].sum(1) - 1
        lg = vlm.lm_head(h[torch.arange(h.shape[0]), last])[:, yes_no].float()
        s = (lg[:, 0] - lg[:, 1]).view(-1, 2)
        for (_prompt, _c, _r, n), row in zip(chunk, s, strict=False):
            correct[n][0] += int(row[0] > row[1])
            correct[n][1] += 1
    vlm.train(was)
    tot = sum(v[0] for v in correct.values()) / max(1, sum(v[1] for v in correct.values()))
    return tot, {k: round(v[0] / max(1, v[1]), 3) for k, v in correct.items()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--bs", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--extra", type=int, default=7, help="statements after the first, per sequence")
    ap.add_argument("--text-hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--vision-hidden", type=int, default=96)
    ap.add_argument("--vision-depth", type=int, default=2)
    ap.add_argument("--rope-theta", type=float, default=5.0)
    ap.add_argument("--pixels", type=int, default=112)
    ap.add_argument("--max-rows", type=int, default=0)
    ap.add_argument("--val-pairs", type=int, default=300)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-leak", type=int, default=1)
    ap.add_argument("--init", default="", help="continue from this pretrained base folder")
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    px = args.pixels * args.pixels
    if args.init:
        base = Path(args.init)
    else:
        base = save_tiny_qwen25vl(out / "init", seed=args.seed, text_hidden=args.text_hidden,
                                  text_layers=args.layers, heads=args.heads, kv_heads=max(1, args.heads // 2),
                                  vision_hidden=args.vision_hidden, vision_depth=args.vision_depth,
                                  rope_theta=args.rope_theta, min_pixels=px, max_pixels=px)
    from transformers import Qwen2_5_VLForConditionalGeneration

    from training.reward.processor import SpatialProcessor
    vlm = Qwen2_5_VLForConditionalGeneration.from_pretrained(base, local_files_only=True, dtype=torch.float32)
    processor = SpatialProcessor.from_pretrained(base, local_files_only=True)
    n_tokens = (args.pixels // 28) ** 2
    print("params", sum(p.numel() for p in vlm.parameters()), "image tokens", n_tokens, flush=True)
    t0 = time.time()
    table = ExampleTable(processor, QUERY, n_tokens, px, px, IMAGE_FIRST_TEMPLATE)
    rows = load_rows(Path(args.data), ("train",))
    if args.max_rows:
        rows = rows[: args.max_rows]
    streams, _ = build_streams(rows, Path(args.data), table, rng, no_leak=bool(args.no_leak))
    vrows = load_rows(Path(args.val), ("train", "val", "test"))[: args.val_pairs]
    _, vpairs = build_streams(vrows, Path(args.val), table, rng, singles=0)
    print(f"data: {len(rows)} rows, {len(streams)} streams, prep {time.time() - t0:.0f}s", flush=True)
    tok = processor.tokenizer
    yes_no = [tok.encode("Yes")[0], tok.encode("No")[0]]
    query_id = tok.encode(QUERY)[0]
    vlm.train()
    opt = torch.optim.AdamW([p for n, p in vlm.named_parameters() if "lm_head" not in n or True], lr=args.lr,
                            weight_decay=0.01, betas=(0.9, 0.98))
    warm = 50
    log = open(out / "pretrain_log.jsonl", "a")
    t0 = time.time()
    stats = {"loss": [], "first": [], "rest": []}
    step = 0
    budget = args.minutes * 60
    order = list(range(len(streams)))
    rng.shuffle(order)
    cursor = 0
    while time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        lr = args.lr * min(1.0, (step + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        if cursor + args.bs > len(order):
            rng.shuffle(order)
            cursor = 0
        chunk = [streams[i] for i in order[cursor: cursor + args.bs]]
        cursor += args.bs
        b = stream_batch(table, chunk, yes_no[0], yes_no[1], query_id, extra=args.extra)
        h = answer_logits(vlm, b)
        sel = b["targets"] != -100
        logits = vlm.lm_head(h[sel])[:, yes_no].float()
        target = (b["targets"][sel] == yes_no[1]).long()  # 0 = Yes, 1 = No
        loss = torch.nn.functional.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(vlm.parameters(), 1.0)
        opt.step()
        step += 1
        hit = (logits.argmax(1) == target).float()
        first = torch.zeros_like(b["targets"], dtype=torch.bool)
        last_q = b["targets"].new_tensor([len(table.ids(s.texts[0])) - 1 for s in chunk])
        first[torch.arange(len(chunk)), last_q] = True
        is_first = first[sel]
        stats["loss"].append(loss.item())
        stats["first"].append(hit[is_first].mean().item())
        stats["rest"].append(hit[~is_first].mean().item())
        if step % args.eval_every == 0:
            pw, by_n = pairwise_eval(vlm, table, vpairs, yes_no)
            rec = {"step": step, "sec": round(time.time() - t0), "loss": round(sum(stats["loss"]) / len(stats["loss"]), 4),
                   "acc_first": round(sum(stats["first"]) / len(stats["first"]), 3),
                   "acc_rest": round(sum(stats["rest"]) / len(stats["rest"]), 3),
                   "val_pairwise": round(pw, 3), "val_by_objects": by_n, "grad_norm": round(float(gn), 3),
                   "lr": round(lr, 6)}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            stats = {k: [] for k in stats}
            if step % (args.eval_every * 5) == 0:
                vlm.save_pretrained(out / "pretrained")
                processor.save_pretrained(out / "pretrained")
    vlm.save_pretrained(out / "pretrained")
    processor.save_pretrained(out / "pretrained")
    pw, by_n = pairwise_eval(vlm, table, vpairs, yes_no)
    print(json.dumps({"final_step": step, "val_pairwise": pw, "by_objects": by_n}), flush=True)


if __name__ == "__main__":
    main()
