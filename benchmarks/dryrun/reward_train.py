"""Dry run of one LoRA reward-training optimizer step (training.reward.train.trainer's step, one process).

The model is built by the trainer's own functions: `loading.make_trainable` (reward token, LoRA on q/k/v/o of the
text decoder, the trainable reward-token row, a new head), `trainable.prepare_for_training` (fp32 trainables,
gradient checkpointing, train mode) and `trainable.make_optimizer` (AdamW). The step is the trainer's micro-step:
`model.encode` of the chosen and rejected images, the forward under bf16 autocast (accelerate's mixed_precision
on CUDA; CPU autocast here), `losses.pair_loss`, backward, gradient clipping, `optimizer.step`, `zero_grad`.
Only the accelerate plumbing of `trainer.train` (DDP, no_sync, logging) is not called: it allocates nothing on
one process. Micro-batches of one step are identical in shape, so one is run and its FLOPs multiplied.

`token_row="peft"` keeps peft's own trainable-token forward (the whole embedding matrix copied per forward), to
show what the one-row override (training/reward/models/token_row.py) saves.
"""

from __future__ import annotations

import contextlib

import torch

from .fake import build_qwen, building
from .measure import Meter
from .score import PROMPT, random_images


def build_trainable(shape: str, fake: bool, px: int, lora_rank: int = 32, token_row: str = "one-row",
                    checkpointing: bool = True):
    from training.reward.config import HeadConfig, LoraSettings, ScorerConfig
    from training.reward.models.loading import make_trainable
    from training.reward.train.trainable import prepare_for_training

    vlm, processor = build_qwen(shape, fake, px)
    config = ScorerConfig(weights="lora", lora=LoraSettings(rank=lora_rank, alpha=lora_rank, dropout=0.0),
                          head=HeadConfig(hidden_size=1024), min_pixels=56 * 56, max_pixels=px * px)
    # LoRA adapters are built in the base's dtype (peft casts them to it, then back up to fp32)
    with building(fake, next(vlm.parameters()).dtype):
        model = make_trainable(vlm, processor, config, seed=0)
        if token_row == "peft":
            _restore_peft_forward(model.vlm)
        prepare_for_training(model, checkpointing)
    return model


def _restore_peft_forward(vlm) -> None:
    from peft.tuners.trainable_tokens.layer import TrainableTokensLayer

    for module in vlm.modules():
        if isinstance(module, TrainableTokensLayer):
            module.__class__ = TrainableTokensLayer


def run(shape: str, fake: bool = True, micro_batch: int = 4, accumulation: int = 1, px: int = 512,
        lora_rank: int = 32, token_row: str = "one-row", checkpointing: bool = True,
        autocast: bool = True) -> Meter:
    from training.reward.train.losses import pair_loss
    from training.reward.train.train_config import RewardTrainConfig
    from training.reward.train.trainable import make_optimizer

    model = build_trainable(shape, fake, px, lora_rank, token_row, checkpointing)
    config = RewardTrainConfig()
    config.train.micro_batch_size = micro_batch
    config.train.batch_size = micro_batch * accumulation
    optimizer = make_optimizer(model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    chosen, rejected = random_images(micro_batch, px, seed=1), random_images(micro_batch, px, seed=2)
    prompts = [PROMPT] * micro_batch
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    # the steady state of a step: AdamW moments exist (from the previous step); gradients of the previous
    # micro-batch are being accumulated when there are several
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    optimizer.zero_grad(set_to_none=accumulation == 1)
    meter = Meter()
    note = (f"{micro_batch} pairs ({2 * micro_batch} images {px}x{px}) a micro-batch, x{accumulation} per step; "
            f"LoRA rank {lora_rank}, checkpointing {'on' if checkpointing else 'off'}, token row: {token_row}")
    with meter.phase("train step", {"scorer": model}, [optimizer], repeat=accumulation, note=note):
        batch = model.encode(chosen + rejected, prompts + prompts)
        with cast:
            mean, log_std = model(batch)
        n = micro_batch
        per_pair = pair_loss(config.train.loss, mean[:n].float(), log_std[:n].float(), mean[n:].float(),
                             log_std[n:].float())
        (per_pair.sum() / config.train.batch_size).backward()
        torch.nn.utils.clip_grad_norm_(params, config.train.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    meter.trainable_bytes = sum(p.numel() * p.element_size() for p in params)
    return meter
