"""The coords backbone extended to two images: the shipped shapes-edit scorer.

    source, edited -> RGB at `pixels` x `pixels`, stacked with their difference (9 channels: the comparison is
                      explicit, pixel by pixel, so a small or wrong change cannot be overlooked) -> conv stem ->
                      grid x grid tokens, each plus its cell centre (x, y) and Fourier features of it
    change map      a linear read of each token: did this cell change? Trained against the edit region (the
                    region-grounding loss) and fed back into the token, so the text reads where the edit happened
    instruction     words -> ids (unknown -> <unk>), the reward slot first; decoder layers self-attend and
                    cross-attend to the image tokens; the slot's final state feeds the reward head (mean, log std)
    word probe      (training only) each word's object centre in the source and in the edited image, after layer 1
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn

from ..models.coords_model import (
    CoordsConfig,
    CoordsModel,
    add_coordinates,
    add_text_decoder,
    decode,
    encode_words,
    prompt_words,
)
from .config import EditScorerConfig
from .regions import boxes_from_map, cell_coverage

BACKBONE_FILE = "backbone.safetensors"


@dataclass
class EditOutput:
    mean: torch.Tensor  # [B]
    log_std: torch.Tensor  # [B]
    region_logits: torch.Tensor  # [B, grid*grid]: did each cell change
    probed: torch.Tensor | None = None  # [B, T, 4]: each word's (x, y) in the source and in the edited image


class EditCoordsBackbone(nn.Module):
    def __init__(self, cfg: CoordsConfig):
        super().__init__()
        d, stride = cfg.hidden, cfg.pixels // cfg.grid
        self.pixels, self.grid, self.max_words, self.layers = cfg.pixels, cfg.grid, cfg.max_words, cfg.layers
        if stride % 2:
            raise ValueError(f"coords-edit: pixels / grid ({stride}) must be even")
        # A stride-2 first layer: a full-resolution 9-channel convolution cost 4x as much for no accuracy we saw.
        self.stem = nn.Sequential(nn.Conv2d(9, 32, 4, stride=2, padding=1), nn.GELU(),
                                  nn.Conv2d(32, d, stride // 2, stride=stride // 2), nn.GELU(),
                                  nn.Conv2d(d, d, 3, padding=1), nn.GELU(), nn.Conv2d(d, d, 1))
        add_coordinates(self, cfg)
        self.change = nn.Linear(d, 1)  # the change map
        self.change_embed = nn.Linear(1, d)  # ... fed back into the tokens
        add_text_decoder(self, cfg)
        self.ground_probe = nn.Linear(d, 4)

    def forward(self, source, edited, input_ids, attention_mask, probe_layer: int = 0):
        dtype = self.coord_proj.weight.dtype
        s, e = source.to(dtype) / 127.5 - 1, edited.to(dtype) / 127.5 - 1
        tokens = self.stem(torch.cat([s, e, e - s], 1)).flatten(2).transpose(1, 2)
        tokens = tokens + self.coord_proj(self.coords.to(dtype))
        change = self.change(tokens).squeeze(-1)
        image = tokens + self.change_embed(torch.sigmoid(change).unsqueeze(-1))
        hidden, probed = decode(self, image, input_ids, attention_mask, probe_layer)
        return hidden, change, probed


class EditCoordsModel(CoordsModel):
    """(instruction, source, edited) -> (mean, log_std) and a change map; every weight trainable."""

    kind = "coords"

    def __init__(self, config: EditScorerConfig):
        super().__init__(config, EditCoordsBackbone)

    @property
    def grid(self) -> int:
        return self.backbone.grid

    def encode_words(self, instructions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return encode_words(instructions, self.word_ids, self.backbone.max_words, "instructions", "words")

    def encode(self, sources: list[Image.Image], edited: list[Image.Image], instructions: list[str]) -> dict:
        if not len(sources) == len(edited) == len(instructions):
            raise ValueError(f"got {len(sources)} sources, {len(edited)} edited images and {len(instructions)} "
                             "instructions; expected one of each per edit")
        ids, mask = self.encode_words(instructions)
        return {"source": self.encode_images(sources), "edited": self.encode_images(edited), "input_ids": ids,
                "attention_mask": mask}

    def forward(self, batch: dict, probe_layer: int = 0) -> EditOutput:
        device = self.head.out.weight.device
        hidden, change, probed = self.backbone(*(batch[k].to(device) for k in
                                                 ("source", "edited", "input_ids", "attention_mask")),
                                               probe_layer=probe_layer)
        mean, log_std = self.head(hidden)
        return EditOutput(mean, log_std, change, probed)

    # ----- region grounding -----
    def region_loss(self, out: EditOutput, regions: list) -> torch.Tensor:
        """Binary cross-entropy of the change map against the cells' coverage by the true edit region."""
        target = cell_coverage(regions, self.grid).to(out.region_logits.device)
        return nn.functional.binary_cross_entropy_with_logits(out.region_logits.float(), target)

    def predict_regions(self, out: EditOutput) -> list[list[list[float]]]:
        prob = torch.sigmoid(out.region_logits.detach().float()).cpu().numpy().reshape(-1, self.grid, self.grid)
        return [boxes_from_map(p) for p in prob]

    def word_targets(self, instructions: list[str], scenes: list[tuple[list, list]]):
        """Probe targets: each colour / shape word's object centre in the source and edited scene (when exactly one
        object there has that word), [B, T, 4], and which of the 4 numbers are known."""
        ids, _ = self.encode_words(instructions)
        target = torch.zeros(*ids.shape, 4)
        known = torch.zeros(*ids.shape, 4, dtype=torch.bool)
        for i, (text, (src, edited)) in enumerate(zip(instructions, scenes, strict=True)):
            for k, scene in enumerate((src, edited)):
                named: dict[str, list] = {}
                for obj in scene:
                    x0, y0, x1, y1 = obj["box"]
                    for w in (obj["color"], obj["shape"]):
                        named.setdefault(w, []).append(((x0 + x1) / 2, (y0 + y1) / 2))
                for j, word in enumerate(prompt_words(text), start=1):
                    if len(named.get(word, ())) == 1:
                        target[i, j, 2 * k:2 * k + 2] = torch.tensor(named[word][0])
                        known[i, j, 2 * k:2 * k + 2] = True
        return target, known

    @torch.inference_mode()
    def score(self, sources, edited, instructions) -> EditOutput:
        return self(self.encode(sources, edited, instructions))
