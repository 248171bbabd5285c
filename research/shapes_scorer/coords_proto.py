"""Learnability check for the fallback: a small text-queries-image backbone with explicit coordinates, trained
with the Gaussian Bradley-Terry loss alone. Not the shipped code (training/reward/models/coords_model.py is)."""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from training.reward.train.losses import gaussian_bt_loss

WORD = re.compile(r"[a-z]+|[^\sa-z]")


def load(folder: Path, splits, pixels: int):
    rows = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r["split"] in splits]

    def img(p):
        im = Image.open(folder / p).convert("RGB").resize((pixels, pixels), Image.BILINEAR)
        return np.asarray(im)

    ch = np.stack([img(r["chosen"]) for r in rows])
    rj = np.stack([img(r["rejected"]) for r in rows])
    return rows, torch.from_numpy(ch).permute(0, 3, 1, 2), torch.from_numpy(rj).permute(0, 3, 1, 2)


class Model(nn.Module):
    def __init__(self, vocab: int, d: int = 64, layers: int = 4, grid: int = 16, pixels: int = 64):
        super().__init__()
        stride = pixels // grid
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(32, d, stride, stride=stride), nn.GELU(),
                                  nn.Conv2d(d, d, 3, padding=1), nn.GELU(), nn.Conv2d(d, d, 1))
        ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
        coords = torch.stack([(xs.flatten() + 0.5) / grid, (ys.flatten() + 0.5) / grid], 1)
        freqs = torch.arange(1, 5).float() * torch.pi
        feats = [coords] + [f(coords[:, i:i + 1] * freqs) for i in range(2) for f in (torch.sin, torch.cos)]
        self.register_buffer("coord_feats", torch.cat(feats, 1), persistent=False)
        self.coord_proj = nn.Linear(self.coord_feats.shape[1], d)
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(64, d)
        layer = nn.TransformerDecoderLayer(d, 4, 4 * d, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, 2))

        self.probe = nn.Linear(d, 2)

    def forward(self, images_u8, ids, mask, probe_layer=-1):
        x = images_u8.float() / 127.5 - 1
        f = self.stem(x).flatten(2).transpose(1, 2) + self.coord_proj(self.coord_feats)
        h = self.embed(ids) + self.pos(torch.arange(ids.shape[1]))
        probe = None
        for i, layer in enumerate(self.decoder.layers):
            h = layer(h, f, tgt_key_padding_mask=~mask)
            if i == probe_layer:
                probe = self.probe(h)
        out = self.head(self.norm(h[:, 0]))
        return out[:, 0], out[:, 1].clamp(-7, 5), probe


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", default="/tmp/ss/train12k")
    ap.add_argument("--heldout", default="/tmp/ss/heldout")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--grid", type=int, default=16)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--aux", type=float, default=0.0, help="weight of the colour-word -> object centre probe")
    ap.add_argument("--probe-layer", type=int, default=0)
    ap.add_argument("--log", default="")
    a = ap.parse_args()
    torch.manual_seed(0)
    t0 = time.time()
    tr, trc, trr = load(Path(a.train), ("train", "val", "test"), 64)
    ho, hoc, hor = load(Path(a.heldout), ("train", "val", "test"), 64)
    print(f"loaded {len(tr)} + {len(ho)} pairs in {time.time() - t0:.0f}s", flush=True)
    words = sorted({w for r in tr for w in WORD.findall(r["prompt"].lower())})
    vocab = {w: i + 3 for i, w in enumerate(words)}  # 0 pad, 1 unk, 2 reward

    def tok(prompts):
        seqs = [[2] + [vocab.get(w, 1) for w in WORD.findall(p.lower())] for p in prompts]
        n = max(map(len, seqs))
        ids = torch.zeros(len(seqs), n, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
        return ids, ids != 0

    tr_ids = [r["prompt"] for r in tr]
    colours = {"red", "green", "blue", "yellow"}

    def centres(scene):
        return {o["color"]: ((o["box"][0] + o["box"][2]) / 2, (o["box"][1] + o["box"][3]) / 2)
                for o in scene["objects"]}

    def targets(rows, key, ids):
        t = torch.zeros(*ids.shape, 2)
        m = torch.zeros(ids.shape, dtype=torch.bool)
        for i, r in enumerate(rows):
            c = centres(r[key])
            for j, w in enumerate(WORD.findall(r["prompt"].lower())):
                if w in colours and w in c:
                    t[i, j + 1] = torch.tensor(c[w])
                    m[i, j + 1] = True
        return t, m
    model = Model(len(vocab) + 3, a.d, a.layers, a.grid)
    print("params", sum(p.numel() for p in model.parameters()))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / 100))
    rng = np.random.default_rng(0)

    def evaluate():
        model.eval()
        with torch.no_grad():
            ids, mask = tok([r["prompt"] for r in ho])
            margins = []
            for s in range(0, len(ho), 250):
                sl = slice(s, s + 250)
                mc, _, _ = model(hoc[sl], ids[sl], mask[sl])
                mr, _, _ = model(hor[sl], ids[sl], mask[sl])
                margins.append(mc - mr)
            m = torch.cat(margins).numpy()
        model.train()
        n_obj = np.array([len(r["scene"]["objects"]) for r in ho])
        ok = m > 0
        return ok.mean(), ok[n_obj == 2].mean(), ok[n_obj == 3].mean()

    for step in range(1, a.steps + 1):
        idx = rng.integers(0, len(tr), a.bs)
        ids, mask = tok([tr_ids[i] for i in idx])
        imgs = torch.cat([trc[idx], trr[idx]])
        mean, ls, probe = model(imgs, torch.cat([ids, ids]), torch.cat([mask, mask]), a.probe_layer)
        n = len(idx)
        loss = gaussian_bt_loss(mean[:n], ls[:n], mean[n:], ls[n:]).mean()
        aux = torch.zeros(())
        if a.aux:
            rows = [tr[i] for i in idx]
            tc, mc_ = targets(rows, "scene", ids)
            tr_, mr_ = targets(rows, "perturbed_scene", ids)
            tgt, m = torch.cat([tc, tr_]), torch.cat([mc_, mr_])
            aux = ((probe - tgt) ** 2).sum(-1)[m].mean() * 10
            loss = loss + a.aux * aux
        opt.zero_grad()
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0:
            acc = float((mean[:n] > mean[n:]).float().mean())
            print(f"step {step} loss {loss.item():.4f} aux {aux.item():.4f} acc {acc:.3f} gn {gn:.3f} "
                  f"t {time.time() - t0:.0f}s",
                  flush=True)
        if step % 250 == 0:
            print("  heldout all/2obj/3obj", [round(float(v), 4) for v in evaluate()], flush=True)
        if time.time() - t0 > a.minutes * 60:
            break
    print("final heldout", [round(float(v), 4) for v in evaluate()])


if __name__ == "__main__":
    main()
