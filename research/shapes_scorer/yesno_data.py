"""Dense yes/no examples for pretraining the tiny shapes base VLM, labelled by the shapes oracle.

From a shapes dataset folder (manifest.jsonl + images) we make, per image:
- full prompts: the pair's prompt and perturbed prompt, each judged on both images (label: every relation holds);
- single relations: "a <colour> <shape> <phrase> a <colour> <shape>" for ordered object pairs and predicates,
  balanced between true and false (label: the oracle's verdict on that relation).
Images are preprocessed once (the Qwen2-VL image processor) and texts tokenised once per distinct string.
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
from training.reward.model import ChatFormatter

PREDICATES = tuple(_PHRASES)
# The shapes scorer's chat: short, so that a CPU step spends its time on the prompt and the image.
SHORT_TEMPLATE = Template(system="", user="{prompt}{image}")


@dataclass
class Example:
    image: int  # index into the image table
    text: str  # the prompt (not yet formatted)
    label: int  # 1 = every relation holds
    kind: str  # "full" or "single"
    n_objects: int


def _clause(subj, pred, obj, rng: random.Random) -> str:
    phrase = rng.choice(_PHRASES[pred])
    return f"a {subj[0]} {subj[1]} {phrase} a {obj[0]} {obj[1]}"


def load_rows(folder: Path, splits: tuple[str, ...]) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("split") in splits]


class ExampleTable:
    """Images (preprocessed), examples and a tokeniser cache, for one or more dataset folders."""

    def __init__(self, processor, query: str, image_tokens: int, min_pixels: int, max_pixels: int,
                 template: Template | None = None):
        self.processor = processor
        self.tok = processor.tokenizer
        self.format_chat = ChatFormatter(processor, template or Template(), query)
        self.image_tokens = image_tokens
        self.size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
        self.pixels: list[torch.Tensor] = []
        self.grid: torch.Tensor | None = None
        self.ids_cache: dict[str, list[int]] = {}
        self.pad_id = self.tok.convert_tokens_to_ids("<|endoftext|>")
        self.image_pad_id = self.tok.convert_tokens_to_ids("<|image_pad|>")

    def add_image(self, path: Path) -> tuple[int, dict]:
        image = Image.open(path).convert("RGB")
        out = self.processor.image_processor(images=[image], return_tensors="pt", size=self.size)
        self.pixels.append(out["pixel_values"])
        self.grid = out["image_grid_thw"][0]
        return len(self.pixels) - 1, find_objects(image)

    def ids(self, text: str) -> list[int]:
        if text not in self.ids_cache:
            chat = self.format_chat(text).replace("<|image_pad|>", "<|image_pad|>" * self.image_tokens)
            self.ids_cache[text] = self.tok(chat, add_special_tokens=False)["input_ids"]
        return self.ids_cache[text]

    def batch(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        seqs = [self.ids(e.text) for e in examples]
        n = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), n), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), n), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "mm_token_type_ids": (ids == self.image_pad_id).long(),
            "pixel_values": torch.cat([self.pixels[e.image] for e in examples]),
            "image_grid_thw": self.grid.unsqueeze(0).repeat(len(examples), 1),
            "last": mask.sum(1) - 1,
            "labels": torch.tensor([e.label for e in examples]),
        }


def build_examples(table: ExampleTable, rows: list[dict], root: Path, rng: random.Random,
                   singles_per_image: int = 4) -> tuple[list[Example], list[tuple[str, int, int, int]]]:
    """(examples, pairs) where pairs are (prompt, chosen image, rejected image, n_objects) for pairwise checks."""
    examples: list[Example] = []
    pairs = []
    seen: dict[str, tuple[int, dict]] = {}
    for row in rows:
        for key in ("chosen", "rejected"):
            if row[key] not in seen:
                seen[row[key]] = table.add_image(root / row[key])
        rels = parse_prompt(row["prompt"])
        shapes = {}
        for r in rels:
            shapes[r.subject[0]] = r.subject
            shapes[r.object[0]] = r.object
        n_obj = len(shapes)
        ci, cobj = seen[row["chosen"]]
        ri, robj = seen[row["rejected"]]
        pairs.append((row["prompt"], ci, ri, n_obj))
        for text in (row["prompt"], row["perturbed_prompt"]):
            for idx, objs in ((ci, cobj), (ri, robj)):
                label = all(relation_holds(r.predicate, objs.get(r.subject[0]), objs.get(r.object[0]))
                            for r in parse_prompt(text))
                examples.append(Example(idx, text, int(label), "full", n_obj))
        colours = list(shapes)
        for idx, objs in ((ci, cobj), (ri, robj)):
            facts = {True: [], False: []}
            for a in colours:
                for b in colours:
                    if a == b:
                        continue
                    for p in PREDICATES:
                        facts[relation_holds(p, objs.get(a), objs.get(b))].append((a, p, b))
            for k in range(singles_per_image):
                pool = facts[k % 2 == 0] or facts[k % 2 == 1]
                a, p, b = rng.choice(pool)
                examples.append(Example(idx, _clause(shapes[a], p, shapes[b], rng),
                                        int(relation_holds(p, objs.get(a), objs.get(b))), "single", n_obj))
    return examples, pairs


# ----- dense streams: one image, many judged statements in one sequence -----
# The scorer chat with the image first; its last token (the query) is where the judgement is read.
IMAGE_FIRST_TEMPLATE = Template(system="", user="{image}{prompt}")


@dataclass
class Stream:
    image: int
    texts: list[str]  # texts[0] is read in the scorer's chat format, the rest as "<text> Answer <Yes|No>"
    labels: list[int]
    n_objects: int


def build_streams(rows, root: Path, table: ExampleTable, rng: random.Random, singles: int = 6,
                  no_leak: bool = False):
    """Per image of each pair: a stream of a full prompt (scorer format) + the other full prompt + singles."""
    streams, pairs = [], []
    seen: dict[str, tuple[int, dict]] = {}
    for row in rows:
        for key in ("chosen", "rejected"):
            if row[key] not in seen:
                seen[row[key]] = table.add_image(root / row[key])
        rels = parse_prompt(row["prompt"])
        shapes = {}
        for r in rels:
            shapes[r.subject[0]] = r.subject
            shapes[r.object[0]] = r.object
        colours = list(shapes)
        ci, _ = seen[row["chosen"]]
        ri, _ = seen[row["rejected"]]
        pairs.append((row["prompt"], ci, ri, len(shapes)))
        for key in ("chosen", "rejected"):
            idx, objs = seen[row[key]]

            def full(text, objs=objs):
                return int(all(relation_holds(r.predicate, objs.get(r.subject[0]), objs.get(r.object[0]))
                               for r in parse_prompt(text)))
            prompts = [row["prompt"], row["perturbed_prompt"]]
            rng.shuffle(prompts)
            texts = list(prompts)
            labels = [full(t) for t in texts]
            facts = {True: [], False: []}
            for a in colours:
                for b in colours:
                    if a != b:
                        for p in PREDICATES:
                            facts[relation_holds(p, objs.get(a), objs.get(b))].append((a, p, b))
            if no_leak:
                # One statement per unordered pair of objects, so no verdict follows from an earlier one.
                unordered = [(a, b) for i, a in enumerate(colours) for b in colours[i + 1:]]
                rng.shuffle(unordered)
                for a, b in unordered[:singles]:
                    if rng.random() < 0.5:
                        a, b = b, a
                    want = rng.random() < 0.5
                    options = [p for p in PREDICATES if relation_holds(p, objs.get(a), objs.get(b)) == want]
                    p = rng.choice(options or list(PREDICATES))
                    texts.append(_clause(shapes[a], p, shapes[b], rng))
                    labels.append(int(relation_holds(p, objs.get(a), objs.get(b))))
            else:
                for k in range(singles):
                    pool = facts[k % 2 == 0] or facts[k % 2 == 1]
                    a, p, b = rng.choice(pool)
                    texts.append(_clause(shapes[a], p, shapes[b], rng))
                    labels.append(int(relation_holds(p, objs.get(a), objs.get(b))))
            tail = list(zip(texts[1:], labels[1:], strict=False))
            rng.shuffle(tail)
            streams.append(Stream(idx, [texts[0]] + [t for t, _ in tail], [labels[0]] + [lab for _, lab in tail],
                                  len(shapes)))
    return streams, pairs


def stream_batch(table: ExampleTable, streams: list[Stream], yes_id: int, no_id: int, query_id: int,
                 extra: int | None = None) -> dict[str, torch.Tensor]:
    """Token ids of each stream; `targets` holds Yes/No ids at the query positions (-100 elsewhere)."""
    seqs, tgts = [], []
    for s in streams:
        ids = list(table.ids(s.texts[0]))
        tgt = [-100] * len(ids)
        tgt[-1] = yes_id if s.labels[0] else no_id
        n = len(s.texts) if extra is None else min(len(s.texts), 1 + extra)
        previous = tgt[-1]
        for text, label in zip(s.texts[1:n], s.labels[1:n], strict=False):
            # runs B and C had [ans] here: each statement was preceded by its own verdict (see NOTES.md)
            ans = yes_id if label else no_id
            piece = [previous] + table.tok(" " + text, add_special_tokens=False)["input_ids"] + [query_id]
            ids += piece
            tgt += [-100] * (len(piece) - 1) + [ans]
            previous = ans
        seqs.append(ids)
        tgts.append(tgt)
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), table.pad_id, dtype=torch.long)
    targets = torch.full((len(seqs), n), -100, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, (s, t) in enumerate(zip(seqs, tgts, strict=False)):
        ids[i, : len(s)] = torch.tensor(s)
        targets[i, : len(t)] = torch.tensor(t)
        mask[i, : len(s)] = 1
    return {
        "input_ids": ids, "attention_mask": mask, "mm_token_type_ids": (ids == table.image_pad_id).long(),
        "pixel_values": torch.cat([table.pixels[s.image] for s in streams]),
        "image_grid_thw": table.grid.unsqueeze(0).repeat(len(streams), 1), "targets": targets,
    }
