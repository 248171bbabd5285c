"""The "coords" backbone: a small text-queries-image transformer whose image tokens carry explicit coordinates.

It is the shapes world's shipped scorer (issue 5's allowed fallback, see research/shapes_scorer/NOTES.md for why a
tiny Qwen2.5-VL did not get there) and sits behind the same interface as SpatialScoreModel: `encode(images,
prompts)` -> batch, `forward(batch)` -> (mean, log_std) from the same RewardHead, `score_shared_prefix`, and the
same scorer folder (spatialscore.json with backbone "coords", backbone.safetensors, head.safetensors).

    image  -> RGB, resized to `pixels` x `pixels` -> conv stem -> grid x grid tokens, each plus a projection of its
              cell centre (x, y) and Fourier features of it: where a token is, is in its features, not learned
    prompt -> lower-case words -> ids from the folder's vocabulary (unknown words -> <unk>), the reward slot first
    decoder layers: the text self-attends and cross-attends to the image tokens; the reward slot's final state
              feeds the head. A word can fetch its object's coordinates in one cross-attention step.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..config import ScorerConfig
from .head import RewardHead

WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")
PAD, UNK, SLOT = 0, 1, 2  # ids before the vocabulary's words; SLOT is the reward token's place
BACKBONE_FILE = "backbone.safetensors"


@dataclass
class CoordsConfig:
    pixels: int = 64  # images are resized to pixels x pixels
    grid: int = 16  # image tokens per side (pixels must be a multiple)
    hidden: int = 64
    layers: int = 4
    heads: int = 4
    max_words: int = 96  # longest prompt, in words and punctuation marks
    fourier: int = 4  # sin/cos frequencies per coordinate
    vocab: list[str] = field(default_factory=list)

    def __post_init__(self):
        problems = []
        if self.pixels < 8 or self.grid < 1 or self.pixels % self.grid:
            problems.append(f"pixels ({self.pixels}) must be >= 8 and a multiple of grid ({self.grid})")
        if self.hidden < 1 or self.heads < 1 or self.hidden % self.heads:
            problems.append(f"hidden ({self.hidden}) must be a positive multiple of heads ({self.heads})")
        if self.layers < 1 or self.max_words < 1 or self.fourier < 0:
            problems.append("layers and max_words must be >= 1, fourier >= 0")
        if len(set(self.vocab)) != len(self.vocab):
            problems.append("vocab has repeated words")
        if problems:
            raise ValueError("coords backbone: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def prompt_words(prompt: str) -> list[str]:
    return WORD.findall(prompt.lower())


def build_vocab(prompts) -> list[str]:
    """Every word of the training prompts, sorted: the same on every process and every run."""
    return sorted({w for p in prompts for w in prompt_words(p)})


def coordinate_features(grid: int, fourier: int) -> torch.Tensor:
    """[grid*grid, 2 + 4*fourier]: each cell centre (x, y) in [0, 1] (x right, y down) and sin/cos of it."""
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    xy = torch.stack([(xs.flatten() + 0.5) / grid, (ys.flatten() + 0.5) / grid], 1)
    feats = [xy]
    if fourier:
        freqs = torch.arange(1, fourier + 1, dtype=torch.float32) * math.pi
        for i in range(2):
            angle = xy[:, i:i + 1] * freqs
            feats += [torch.sin(angle), torch.cos(angle)]
    return torch.cat(feats, 1)


def encode_words(texts: list[str], word_ids: dict[str, int], max_words: int, what: str = "prompts",
                 unit: str = "words and marks") -> tuple[torch.Tensor, torch.Tensor]:
    """Word ids [B, T] of each text, the reward slot first and unknown words as <unk>, padded; and the mask of real
    tokens. A text longer than `max_words` is refused, naming `what`[i]."""
    seqs = []
    for i, text in enumerate(texts):
        words = prompt_words(text)
        if len(words) > max_words:
            raise ValueError(f"{what}[{i}]: {len(words)} {unit}, more than this scorer reads ({max_words})")
        seqs.append([SLOT] + [word_ids.get(w, UNK) for w in words])
    ids = torch.full((len(seqs), max(map(len, seqs))), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
    return ids, ids != PAD


def encode_pixels(images: list[Image.Image], pixels: int) -> torch.Tensor:
    """uint8 [B, 3, pixels, pixels]: each image as RGB, resized (bilinear)."""
    arrays = [np.asarray(im.convert("RGB").resize((pixels, pixels), Image.BILINEAR)) for im in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def add_coordinates(backbone: nn.Module, cfg: CoordsConfig) -> None:
    """The image half's coordinates: each cell's centre and Fourier features (`coords`, not saved) and their
    projection to the hidden size (`coord_proj`)."""
    backbone.register_buffer("coords", coordinate_features(cfg.grid, cfg.fourier), persistent=False)
    backbone.coord_proj = nn.Linear(backbone.coords.shape[1], cfg.hidden)


def add_text_decoder(backbone: nn.Module, cfg: CoordsConfig) -> None:
    """The text half's modules, in this order (their initial weights are drawn in it): word and position
    embeddings, the decoder layers, the final norm."""
    d = cfg.hidden
    backbone.embed = nn.Embedding(len(cfg.vocab) + 3, d)
    backbone.position = nn.Embedding(cfg.max_words + 1, d)
    layer = nn.TransformerDecoderLayer(d, cfg.heads, 4 * d, dropout=0.0, activation="gelu", batch_first=True,
                                       norm_first=True)
    backbone.decoder = nn.TransformerDecoder(layer, cfg.layers)
    backbone.norm = nn.LayerNorm(d)


def decode(backbone: nn.Module, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
           probe_layer: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The text half of a coords backbone (this file's, or the edit one): words plus positions, decoder layers that
    self-attend and cross-attend to the image tokens -> (the reward slot's final state, each word's probe output
    after layer `probe_layer`, or None)."""
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    h = backbone.embed(input_ids) + backbone.position(positions)
    pad = ~attention_mask.bool()
    probed = None
    for i, layer in enumerate(backbone.decoder.layers, start=1):
        h = layer(h, image, tgt_key_padding_mask=pad)
        if i == probe_layer:
            probed = backbone.ground_probe(h)
    return backbone.norm(h[:, 0]), probed


class CoordsBackbone(nn.Module):
    """(uint8 images [B, 3, P, P], word ids [B, T], mask [B, T]) -> the reward slot's final state [B, hidden]."""

    def __init__(self, cfg: CoordsConfig):
        super().__init__()
        d, stride = cfg.hidden, cfg.pixels // cfg.grid
        self.pixels, self.max_words, self.layers = cfg.pixels, cfg.max_words, cfg.layers
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(32, d, stride, stride=stride), nn.GELU(),
                                  nn.Conv2d(d, d, 3, padding=1), nn.GELU(), nn.Conv2d(d, d, 1))
        add_coordinates(self, cfg)
        add_text_decoder(self, cfg)
        # Training only (train.grounding_weight): reads each word's (x, y) off its state after a decoder layer.
        self.ground_probe = nn.Linear(d, 2)

    def forward(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                probe_layer: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(the reward slot's final state [B, d], each word's probed (x, y) after layer `probe_layer` or None)."""
        x = pixels.to(self.coord_proj.weight.dtype) / 127.5 - 1
        image = self.stem(x).flatten(2).transpose(1, 2) + self.coord_proj(self.coords.to(x.dtype))
        return decode(self, image, input_ids, attention_mask, probe_layer)


class CoordsModel(nn.Module):
    """What the coords scorers share (this file's, and the edit scorer's in ../edit/coords_edit.py): a backbone of
    `backbone_class`, the reward head on its slot, the ids of the vocabulary's words, the image encoder. Always
    reward mode, every weight trainable; config.coords is the one record of the architecture and vocabulary."""

    mode = "reward"

    def __init__(self, config, backbone_class: type[nn.Module]):
        super().__init__()
        self.config = config
        coords = self.coords_config
        self.backbone = backbone_class(coords)
        self.head = RewardHead(coords.hidden, config.head)
        self.word_ids = {w: i + 3 for i, w in enumerate(coords.vocab)}
        self.source = ""

    @property
    def coords_config(self) -> CoordsConfig:
        return CoordsConfig(**self.config.coords)

    def encode_images(self, images: list[Image.Image]) -> torch.Tensor:
        return encode_pixels(images, self.backbone.pixels)


class CoordsScorerModel(CoordsModel):
    """SpatialScore's interface on the coords backbone."""

    def __init__(self, config: ScorerConfig):
        if config.backbone != "coords":
            raise ValueError(f"CoordsScorerModel needs backbone 'coords', got {config.backbone!r}")
        super().__init__(config, CoordsBackbone)

    # ----- inputs -----
    def encode_prompts(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return encode_words(prompts, self.word_ids, self.backbone.max_words)

    def encode(self, images: list[Image.Image], prompts: list[str]) -> dict[str, torch.Tensor]:
        if len(images) != len(prompts):
            raise ValueError(f"got {len(images)} images and {len(prompts)} prompts; expected one prompt per image")
        ids, mask = self.encode_prompts(prompts)
        return {"pixels": self.encode_images(images), "input_ids": ids, "attention_mask": mask}

    # ----- forward -----
    def forward(self, batch: dict[str, torch.Tensor], probe_layer: int = 0):
        """(mean, log_std); with probe_layer >= 1 also each word's probed (x, y) [B, T, 2] (grounding training)."""
        device = self.head.out.weight.device
        hidden, probed = self.backbone(*(batch[k].to(device) for k in ("pixels", "input_ids", "attention_mask")),
                                       probe_layer=probe_layer)
        mean, log_std = self.head(hidden)
        return (mean, log_std, probed) if probe_layer else (mean, log_std)

    def grounding_targets(self, prompts: list[str], layouts: list[tuple]) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets for the probe: the centre of the object each word names ([B, T, 2]) and where one exists."""
        ids, _ = self.encode_prompts(prompts)
        target = torch.zeros(*ids.shape, 2)
        known = torch.zeros(ids.shape, dtype=torch.bool)
        for i, (prompt, layout) in enumerate(zip(prompts, layouts, strict=True)):
            centres = {w: (x, y) for w, x, y in layout}
            for j, word in enumerate(prompt_words(prompt), start=1):  # token 0 is the reward slot
                if word in centres:
                    target[i, j] = torch.tensor(centres[word])
                    known[i, j] = True
        return target, known

    def world_warnings(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        """Per image, '' or why its score means little: prompt words outside the vocabulary, or an image far
        from the flat-shapes pictures this backbone was trained on (../world_check.py; a thumbnail per image)."""
        from ..world_check import world_warnings

        return world_warnings(images, prompts, set(self.word_ids), prompt_words, world="shapes")

    @torch.inference_mode()
    def score_shared_prefix(self, images: list[Image.Image], prompts: list[str]):
        """The Scorer's entry point; the prompt is a few words here, so there is no prefix worth sharing."""
        return self(self.encode(images, prompts))
