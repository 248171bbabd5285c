"""Dense yes/no streams for pretraining the tiny shapes base VLM, every verdict from the shapes oracle.

A stream is one image and several statements about it, in one sequence: first a full prompt in the shapes
scorer's chat (image first, then the prompt, then the query token), then more statements, each followed by the
query token and its verdict ("<statement> Answer Yes"). Statements are the pair's prompt or perturbed prompt
(judged on this image) and single relations "a <colour> <shape> <phrase> a <colour> <shape>", one per unordered
pair of objects (so no verdict follows from an earlier one), true or false with equal odds.
Images are preprocessed once with the scorer's image processor; texts are tokenised once per distinct string.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from training.dataset.oracle import _PHRASES, find_objects, parse_prompt, relation_holds
from training.reward.config import Template
from training.reward.models.model import ChatFormatter

PREDICATES = tuple(_PHRASES)
QUERY = "Answer"  # the pretraining query token; the scorer's reward token starts from its embedding
# The shapes scorer's chat: short (a CPU step spends its time on the prompt and the image) and image first.
SHAPES_TEMPLATE = Template(system="", user="{image}{prompt}")


@dataclass
class Stream:
    image: int
    texts: list[str]  # texts[0] in the scorer's chat, the rest as "<text> Answer <verdict>"
    labels: list[int]  # 1: every relation of the text holds in the image
    n_objects: int


def load_rows(folder: Path, splits: tuple[str, ...]) -> list[dict]:
    lines = (folder / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return [r for r in rows if r.get("split") in splits]


def _clause(subj, pred, obj, rng: random.Random) -> str:
    return f"a {subj[0]} {subj[1]} {rng.choice(_PHRASES[pred])} a {obj[0]} {obj[1]}"


class StreamTable:
    """Preprocessed images and a token-id cache for one tokenizer / image size."""

    def __init__(self, processor, pixels: int, template: Template = SHAPES_TEMPLATE):
        self.processor = processor
        self.tok = processor.tokenizer
        self.format_chat = ChatFormatter(processor, template, QUERY)
        self.image_tokens = (pixels // 28) ** 2
        self.size = {"shortest_edge": pixels * pixels, "longest_edge": pixels * pixels}
        self.pixels: list[torch.Tensor] = []
        self.centres: list[dict[str, tuple[float, float]]] = []  # per image: colour -> object centre in [0, 1]
        self.grid: torch.Tensor | None = None
        self.ids_cache: dict[str, list[int]] = {}
        self.pad_id = self.tok.convert_tokens_to_ids("<|endoftext|>")
        self.image_pad_id = self.tok.convert_tokens_to_ids("<|image_pad|>")
        self.yes_id, self.no_id, self.query_id = (self.tok.encode(w)[0] for w in ("Yes", "No", QUERY))
        self.colour_of = {self.tok.encode(" " + c)[0]: c for c in ("red", "green", "blue", "yellow")}

    def add_image(self, path: Path) -> tuple[int, dict]:
        image = Image.open(path).convert("RGB")
        out = self.processor.image_processor(images=[image], return_tensors="pt", size=self.size)
        self.pixels.append(out["pixel_values"])
        self.grid = out["image_grid_thw"][0]
        objects = find_objects(image)
        self.centres.append({c: (b.cx / image.width, b.cy / image.height) for c, b in objects.items() if b})
        return len(self.pixels) - 1, objects

    def ids(self, text: str) -> list[int]:
        if text not in self.ids_cache:
            chat = self.format_chat(text).replace("<|image_pad|>", "<|image_pad|>" * self.image_tokens)
            self.ids_cache[text] = self.tok(chat, add_special_tokens=False)["input_ids"]
        return self.ids_cache[text]

    def batch(self, streams: list[Stream], extra: int | None = None) -> dict[str, torch.Tensor]:
        """Right-padded token ids; `targets` holds the Yes/No id at every query position, -100 elsewhere."""
        seqs, tgts = [], []
        for s in streams:
            ids = list(self.ids(s.texts[0]))
            tgt = [-100] * len(ids)
            tgt[-1] = self.yes_id if s.labels[0] else self.no_id
            n = len(s.texts) if extra is None else min(len(s.texts), 1 + extra)
            previous = tgt[-1]
            for text, label in zip(s.texts[1:n], s.labels[1:n], strict=True):
                # the previous statement's verdict (teacher forcing), then this statement and its query
                ans = self.yes_id if label else self.no_id
                piece = [previous] + self.tok(" " + text, add_special_tokens=False)["input_ids"] + [self.query_id]
                ids += piece
                tgt += [-100] * (len(piece) - 1) + [ans]
                previous = ans
            seqs.append(ids)
            tgts.append(tgt)
        n = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), n), self.pad_id, dtype=torch.long)
        targets = torch.full((len(seqs), n), -100, dtype=torch.long)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, (s, t) in enumerate(zip(seqs, tgts, strict=True)):
            ids[i, : len(s)] = torch.tensor(s)
            targets[i, : len(t)] = torch.tensor(t)
            mask[i, : len(s)] = 1
        # where each colour word's object is (x, y in [0, 1]; nan where the token is no colour word)
        centres = torch.full((len(seqs), n, 2), float("nan"))
        for i, s in enumerate(streams):
            for j, t in enumerate(ids[i].tolist()):
                colour = self.colour_of.get(t)
                if colour in self.centres[s.image]:
                    centres[i, j] = torch.tensor(self.centres[s.image][colour])
        return {
            "input_ids": ids, "attention_mask": mask, "mm_token_type_ids": (ids == self.image_pad_id).long(),
            "word_centres": centres,
            "pixel_values": torch.cat([self.pixels[s.image] for s in streams]),
            "image_grid_thw": self.grid.unsqueeze(0).repeat(len(streams), 1), "targets": targets,
            "first": torch.tensor([len(self.ids(s.texts[0])) - 1 for s in streams]),
        }


def build_streams(table: StreamTable, rows: list[dict], root: Path, rng: random.Random, singles: int = 3
                  ) -> tuple[list[Stream], list[tuple[str, int, int, int]]]:
    """(streams, pairs): two streams per pair (one per image); pairs are (prompt, chosen, rejected, n_objects)."""
    streams, pairs = [], []
    seen: dict[str, tuple[int, dict]] = {}
    for row in rows:
        for key in ("chosen", "rejected"):
            if row[key] not in seen:
                seen[row[key]] = table.add_image(root / row[key])
        shapes = {}
        for r in parse_prompt(row["prompt"]):
            shapes[r.subject[0]], shapes[r.object[0]] = r.subject, r.object
        colours = list(shapes)
        pairs.append((row["prompt"], seen[row["chosen"]][0], seen[row["rejected"]][0], len(shapes)))
        for key in ("chosen", "rejected"):
            idx, objs = seen[row[key]]

            def holds(pred, a, b, objs=objs):
                return relation_holds(pred, objs.get(a), objs.get(b))

            prompts = [row["prompt"], row["perturbed_prompt"]]
            rng.shuffle(prompts)
            # (the other full prompt is not added: its verdict nearly always follows from the first one's)
            tail = []
            unordered = [(a, b) for i, a in enumerate(colours) for b in colours[i + 1:]]
            rng.shuffle(unordered)
            for a, b in unordered[:singles]:
                if rng.random() < 0.5:
                    a, b = b, a
                want = rng.random() < 0.5
                pred = rng.choice([p for p in PREDICATES if holds(p, a, b) == want] or list(PREDICATES))
                tail.append((_clause(shapes[a], pred, shapes[b], rng), int(holds(pred, a, b))))
            rng.shuffle(tail)
            first = int(all(holds(r.predicate, r.subject[0], r.object[0]) for r in parse_prompt(prompts[0])))
            streams.append(Stream(idx, [prompts[0]] + [t for t, _ in tail], [first] + [lab for _, lab in tail],
                                  len(shapes)))
    return streams, pairs
