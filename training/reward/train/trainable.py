"""The model, optimizer and LR schedule of a reward-training run.

Precision: trainable weights (LoRA, reward-token row, head; or every weight for "full") are kept in float32;
frozen base weights in bfloat16 on CUDA by default; forwards autocast to bf16 on CUDA (accelerate's
mixed_precision). Gradient checkpointing (non-reentrant) is on for CUDA by default.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..config import HeadConfig, LoraSettings, ScorerConfig
from ..models.coords_model import CoordsConfig, build_vocab
from ..models.loading import create_coords_model, create_model, load_model
from ..models.model import SpatialScoreModel
from .train_config import TINY, RewardTrainConfig

BASE_DIR = "base"  # <output.dir>/base: the tiny base built for model.base = "@tiny"


def resolve_precision(config: RewardTrainConfig, device: torch.device) -> tuple[torch.dtype, str, bool]:
    """(frozen-weight dtype, accelerate mixed_precision, gradient checkpointing) for this device."""
    m, cuda = config.model, device.type == "cuda"
    dtype = {"auto": torch.bfloat16 if cuda else torch.float32, "float32": torch.float32,
             "bfloat16": torch.bfloat16}[m.dtype]
    mixed = ("bf16" if cuda else "no") if m.mixed_precision == "auto" else m.mixed_precision
    checkpointing = cuda if m.gradient_checkpointing == "auto" else m.gradient_checkpointing == "on"
    return dtype, mixed, checkpointing


def tiny_base_path(config: RewardTrainConfig) -> Path:
    return Path(config.output.dir) / BASE_DIR


def build_tiny_base(config: RewardTrainConfig) -> Path:
    """Write the tiny random base of [tiny] into <out>/base once (deterministic in tiny.seed)."""
    from ..models.tiny import save_tiny_qwen25vl

    path = tiny_base_path(config)
    if not (path / "config.json").is_file():
        t = config.tiny
        save_tiny_qwen25vl(path, seed=t.seed, min_pixels=config.model.min_pixels,
                           max_pixels=config.model.max_pixels, text_hidden=t.text_hidden, text_layers=t.text_layers,
                           heads=t.heads, kv_heads=t.kv_heads, vision_hidden=t.vision_hidden,
                           vision_depth=t.vision_depth, rope_theta=t.rope_theta)
    return path


def base_folder(config: RewardTrainConfig) -> str:
    return str(tiny_base_path(config)) if config.model.base == TINY else config.model.base


def build_model(config: RewardTrainConfig, device: torch.device, dtype: torch.dtype,
                prompts: Sequence[str] = ()) -> SpatialScoreModel:
    """A trainable SpatialScore: a fresh one on model.base (or on the coords backbone, whose vocabulary is the
    words of `prompts`), or a saved scorer (model.init_from) to continue."""
    m = config.model
    if m.init_from:
        model = load_model(m.init_from, device=device, dtype=dtype, attn=m.attn, merge_lora=False)
        if model.mode != "reward":
            raise ValueError(f"model.init_from: {m.init_from} is a plain Qwen2.5-VL; use model.base for a new scorer")
        if model.config.weights == "full":
            for p in (model.vlm if hasattr(model, "vlm") else model).parameters():
                p.requires_grad_(True)
        for p in model.head.parameters():
            p.requires_grad_(True)
        return model
    if m.backbone == "coords":
        coords = CoordsConfig(**dataclasses.asdict(config.coords), vocab=build_vocab(prompts))
        head = HeadConfig(hidden_size=config.head.hidden_size, init_log_std=config.head.init_log_std)
        return create_coords_model(coords, head, device=device, seed=config.train.seed)
    lora = config.lora
    scorer_config = ScorerConfig(
        weights=m.weights,
        lora=LoraSettings(rank=lora.rank, alpha=lora.alpha, dropout=lora.dropout, targets=list(lora.targets))
        if m.weights == "lora" else None,
        head=HeadConfig(hidden_size=config.head.hidden_size, init_log_std=config.head.init_log_std),
        min_pixels=m.min_pixels, max_pixels=m.max_pixels,
    )
    return create_model(base_folder(config), scorer_config, device=device, dtype=dtype, attn=m.attn,
                        seed=config.train.seed)


def prepare_for_training(model: SpatialScoreModel, gradient_checkpointing: bool) -> list[str]:
    """fp32 trainables, unused weights frozen, checkpointing on, train mode; returns the trainable names."""
    if not hasattr(model, "vlm"):  # the coords backbone: small, fp32, every weight trains
        model.train()
        return [n for n, p in model.named_parameters() if p.requires_grad]
    vlm = model.vlm.get_base_model() if hasattr(model.vlm, "get_base_model") else model.vlm
    if model.config.weights == "full":
        # The reward head reads the last hidden state; the LM head is never used, and DDP would wait forever
        # for its gradient. (Tied embeddings, as in Qwen2.5-VL-3B, are used as input and stay trainable.)
        out, inp = vlm.get_output_embeddings(), vlm.get_input_embeddings()
        if out is not None and out.weight is not inp.weight:
            out.weight.requires_grad_(False)
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    if gradient_checkpointing:
        if hasattr(vlm, "activation_checkpointing_enable"):
            vlm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:  # transformers before 5.23 (requirements.txt's floor is older) has only the old name
            vlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        vlm.config.use_cache = False
    model.train()
    return [n for n, p in model.named_parameters() if p.requires_grad]


def make_optimizer(model: SpatialScoreModel, config: RewardTrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only; the head may have its own learning rate."""
    t = config.train
    head_lr = t.head_learning_rate or t.learning_rate
    groups = {"decay": [], "no_decay": [], "head": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("head."):
            groups["head"].append(p)
        elif p.dim() >= 2 and "trainable_tokens" not in name:
            groups["decay"].append(p)
        else:
            groups["no_decay"].append(p)
    param_groups = [
        {"params": groups["decay"], "weight_decay": t.weight_decay, "lr": t.learning_rate},
        {"params": groups["no_decay"], "weight_decay": 0.0, "lr": t.learning_rate},
        {"params": groups["head"], "weight_decay": t.weight_decay, "lr": head_lr},
    ]
    return torch.optim.AdamW([g for g in param_groups if g["params"]], betas=(t.adam_beta1, t.adam_beta2),
                             eps=t.adam_eps)


def lr_factor(step: int, config: RewardTrainConfig) -> float:
    """Multiplier of the base LR at optimizer step `step` (0-based): linear warm-up, then the schedule."""
    t = config.train
    if step < t.warmup_steps:
        return (step + 1) / t.warmup_steps
    progress = min(1.0, (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps))
    if t.schedule == "cosine":
        return t.min_lr_ratio + (1 - t.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if t.schedule == "linear":
        return 1 - (1 - t.min_lr_ratio) * progress
    return 1.0


def make_scheduler(optimizer, config: RewardTrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))


def export_scorer(model: SpatialScoreModel, folder: Path, notes: dict) -> Path:
    """Save the scorer folder `training.reward score` loads; a base inside the run folder is referred to
    relatively, so the run folder can be moved as a whole."""
    from ..models.loading import save_model

    config = model.config
    saved_base = config.base_model
    if config.weights == "full":
        config.base_model = None  # self-contained
    elif config.base_model:
        base = Path(config.base_model).resolve()
        run = folder.resolve().parent
        if base == run or run in base.parents:
            config.base_model = os.path.relpath(base, folder.resolve())
    config.notes = notes
    try:
        return save_model(model, folder)
    finally:
        config.base_model = saved_base
