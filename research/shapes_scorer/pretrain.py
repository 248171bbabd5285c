"""Dense yes/no pretraining of the tiny shapes base VLM (full weights), instrumented.

The base reads the reward chat (system, prompt, image, instruction, assistant header) followed by a query token
and predicts "Yes" / "No" at that token with its LM head: does every relation of the prompt hold in the image?
Half the examples are single relations (balanced), half full prompts judged on perfect and perturbed images.

    python research/shapes_scorer/pretrain.py --data /tmp/ss/train12k --val /tmp/ss/heldout --out /tmp/ss/base1 \
        --minutes 10
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

from yesno_data import SHORT_TEMPLATE, ExampleTable, build_examples, load_rows  # noqa: E402

from training.reward.tiny import save_tiny_qwen25vl  # noqa: E402

QUERY = "Answer"


def forward_logits(vlm, batch, yes_no):
    inner = vlm.model
    hidden = inner(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   mm_token_type_ids=batch["mm_token_type_ids"], pixel_values=batch["pixel_values"],
                   image_grid_thw=batch["image_grid_thw"], use_cache=False).last_hidden_state
    h = hidden[torch.arange(hidden.shape[0]), batch["last"]]
    return vlm.lm_head(h)[:, yes_no].float()


@torch.no_grad()
def pairwise_eval(vlm, table, pairs, yes_no, bs=64):
    vlm.eval()
    from yesno_data import Example
    correct = {2: [0, 0], 3: [0, 0]}
    for i in range(0, len(pairs), bs // 2):
        chunk = pairs[i: i + bs // 2]
        ex = []
        for prompt, c, r, n in chunk:
            ex += [Example(c, prompt, 1, "full", n), Example(r, prompt, 0, "full", n)]
        logits = forward_logits(vlm, table.batch(ex), yes_no)
        s = (logits[:, 0] - logits[:, 1]).view(-1, 2)
        for (_prompt, _c, _r, n), row in zip(chunk, s, strict=False):
            correct[n][0] += int(row[0] > row[1])
            correct[n][1] += 1
    vlm.train()
    tot = sum(v[0] for v in correct.values()) / max(1, sum(v[1] for v in correct.values()))
    return tot, {k: v[0] / max(1, v[1]) for k, v in correct.items()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--single-frac", type=float, default=0.5)
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
    ap.add_argument("--short", type=int, default=1)
    args = ap.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    px = args.pixels * args.pixels
    base = save_tiny_qwen25vl(out / "base", seed=args.seed, text_hidden=args.text_hidden, text_layers=args.layers,
                              heads=args.heads, kv_heads=max(1, args.heads // 2), vision_hidden=args.vision_hidden,
                              vision_depth=args.vision_depth, rope_theta=args.rope_theta, min_pixels=px,
                              max_pixels=px)
    from transformers import Qwen2_5_VLForConditionalGeneration

    from training.reward.processor import SpatialProcessor
    vlm = Qwen2_5_VLForConditionalGeneration.from_pretrained(base, local_files_only=True, dtype=torch.float32)
    processor = SpatialProcessor.from_pretrained(base, local_files_only=True)
    n_tokens = (args.pixels // 28) ** 2
    print("params", sum(p.numel() for p in vlm.parameters()), "image tokens", n_tokens, flush=True)
    t0 = time.time()
    table = ExampleTable(processor, QUERY, n_tokens, px, px, SHORT_TEMPLATE if args.short else None)
    rows = load_rows(Path(args.data), ("train",))
    if args.max_rows:
        rows = rows[: args.max_rows]
    examples, _ = build_examples(table, rows, Path(args.data), rng)
    vrows = load_rows(Path(args.val), ("train", "val", "test"))[: args.val_pairs]
    vexamples, vpairs = build_examples(table, vrows, Path(args.val), rng)
    singles = [e for e in examples if e.kind == "single"]
    fulls = [e for e in examples if e.kind == "full"]
    print(f"data: {len(rows)} rows, {len(fulls)} full, {len(singles)} single, prep {time.time() - t0:.0f}s",
          flush=True)
    tok = processor.tokenizer
    yes_no = [tok.encode("Yes")[0], tok.encode("No")[0]]
    vlm.train()
    opt = torch.optim.AdamW(vlm.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    warm = 100
    log = open(out / "pretrain_log.jsonl", "w")
    t0 = time.time()
    acc_s, acc_f, losses = [], [], []
    step = 0
    budget = args.minutes * 60
    while step < args.steps and time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        lr = args.lr * min(1.0, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))
        for g in opt.param_groups:
            g["lr"] = lr
        ns = int(args.bs * args.single_frac)
        batch_ex = rng.sample(singles, ns) + rng.sample(fulls, args.bs - ns)
        batch = table.batch(batch_ex)
        logits = forward_logits(vlm, batch, yes_no)
        target = 1 - batch["labels"]  # index 0 = Yes
        loss = torch.nn.functional.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(vlm.parameters(), 1.0)
        opt.step()
        step += 1
        pred = (logits.argmax(1) == target).float()
        acc_s.append(pred[:ns].mean().item())
        acc_f.append(pred[ns:].mean().item())
        losses.append(loss.item())
        if step % args.eval_every == 0:
            pw, by_n = pairwise_eval(vlm, table, vpairs, yes_no)
            rec = {"step": step, "sec": round(time.time() - t0), "loss": sum(losses) / len(losses),
                   "acc_single": sum(acc_s) / len(acc_s), "acc_full": sum(acc_f) / len(acc_f),
                   "val_pairwise": pw, "val_by_objects": by_n, "grad_norm": float(gn), "lr": lr}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            acc_s, acc_f, losses = [], [], []
    vlm.save_pretrained(out / "pretrained")
    processor.save_pretrained(out / "pretrained")
    pw, by_n = pairwise_eval(vlm, table, vpairs, yes_no)
    print(json.dumps({"final_step": step, "val_pairwise": pw, "by_objects": by_n}), flush=True)


if __name__ == "__main__":
    main()
