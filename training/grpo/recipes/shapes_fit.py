"""The resumable training loop the generator's two stages share (autoencoder, then flow matching).

A stage is a set of named parameters, an AdamW optimizer and a `loss_at(step)` that builds its own batch from the
step number alone (seeded data, seeded noise): a run killed anywhere and resumed from its last checkpoint continues
with exactly the batches it would have seen. Checkpoints are atomic folders of safetensors (weights, EMA weights,
optimizer state) plus state.json; non-finite weights are never written and a non-finite loss stops the stage.

Under `torchrun --nproc_per_node N` (gloo on CPUs) each process computes `loss_at(step, rank, world)` on its share
of the batch and the gradients are averaged once per step; process 0 writes the checkpoints and the log.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm import tqdm

from ...common.atomic import usual_permissions
from ...common.checkpointing import (
    CheckpointError,
    copy_params,
    list_checkpoints,
    load_optimizer,
    read_state,
    save_optimizer,
    save_params,
    write_state,
    writing_checkpoint,
)  # fmt: skip

FORMAT = 1


class NonFiniteLoss(RuntimeError):
    pass


def process_world() -> tuple[int, int]:
    """(this process's rank, the number of processes); joins the process group when launched on several."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("gloo")
    return (torch.distributed.get_rank(), world) if world > 1 else (0, 1)


def _average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= world
    offset = 0
    for p in params:
        p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
        offset += p.numel()


def fit(out: Path, params: dict[str, torch.nn.Parameter], loss_at: Callable[[int, int, int], torch.Tensor], *,
        steps: int,
        lr: float, warmup: int = 100, decay_from: int = 0, ema_decay: float = 0.0, ema_start: int = 0,
        checkpoint_every: int = 200,
        log_every: int = 50,
        desc: str = "train", weight_decay: float = 0.0) -> dict[str, torch.Tensor]:
    """Train `params` for `steps` (resuming from out/checkpoints); returns the final (EMA if enabled) weights.

    The EMA starts as a copy of the weights after step `ema_start` (not of the random initialisation, which a slow
    average would otherwise carry to the end of a short run) and then follows them with `ema_decay` per step.
    """
    rank, world = process_world()
    main = rank == 0
    out.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.AdamW(params.values(), lr=lr, betas=(0.9, 0.99), weight_decay=weight_decay)
    def lr_factor(s: int) -> float:  # linear warmup; constant; from `decay_from` (if set) linear down to 0.1
        factor = min(1.0, (s + 1) / warmup)
        if decay_from and s >= decay_from:
            factor *= 1.0 - 0.9 * (s - decay_from) / max(1, steps - decay_from)
        return factor

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    ema = {n: p.detach().clone() for n, p in params.items()} if ema_decay else None
    start, log = 0, out / "log.jsonl"
    checkpoints = list_checkpoints(out)
    if checkpoints:
        path = checkpoints[-1]
        state = read_state(path, FORMAT)
        copy_params(path, load_file(str(path / "weights.safetensors")), params)
        if ema is not None and start > ema_start:
            ema = {n: t for n, t in load_file(str(path / "ema.safetensors")).items()}
        load_optimizer(optimizer, path / "optimizer.safetensors", state["optimizer"])
        start = state["step"]
        schedule.last_epoch = start - 1
        schedule.step()
        if main and log.is_file():  # drop records past the checkpoint: they are recomputed identically
            keep = [x for x in log.read_text().splitlines() if x.strip() and json.loads(x)["step"] <= start]
            log.write_text("".join(x + "\n" for x in keep))
        print(f"{desc}: resumed from {path} (step {start})", flush=True)
    elif main and log.is_file():
        log.unlink()
    running, timer = 0.0, time.perf_counter()
    bar = tqdm(range(start, steps), desc=desc, initial=start, total=steps, dynamic_ncols=True, mininterval=5,
               disable=not main)
    for step in bar:
        loss = loss_at(step, rank, world)
        if world > 1:  # every process must stop together: the loss that is checked is the mean over processes
            total = loss.detach().clone()
            torch.distributed.all_reduce(total)
            reported = total / world
        else:
            reported = loss.detach()
        if not torch.isfinite(reported):
            raise NonFiniteLoss(f"{desc}: non-finite loss {loss.item()} at step {step + 1}; the last checkpoint "
                                f"({list_checkpoints(out)[-1:] or 'none'}) is kept")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if world > 1:
            _average_gradients(list(params.values()), world)
        torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
        optimizer.step()
        schedule.step()
        if ema is not None and step + 1 >= ema_start:
            with torch.no_grad():
                for n, p in params.items():
                    if step + 1 == ema_start:
                        ema[n].copy_(p.detach())
                    else:
                        ema[n].lerp_(p.detach(), 1.0 - ema_decay)
        running += reported.item()
        done = step + 1
        if main and (done % log_every == 0 or done == steps):
            n = log_every if done % log_every == 0 else done % log_every
            record = {"step": done, "loss": running / n, "lr": schedule.get_last_lr()[0],
                      "seconds": round(time.perf_counter() - timer, 1)}
            with log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            bar.set_postfix(loss=f"{running / n:.4f}")
            running = 0.0
        if main and (done % checkpoint_every == 0 or done == steps):
            with writing_checkpoint(out, done, keep=2) as tmp:
                save_params(params, tmp / "weights.safetensors")
                if ema is not None:
                    save_params(ema, tmp / "ema.safetensors")
                meta = save_optimizer(optimizer, tmp / "optimizer.safetensors")
                write_state(tmp, {"format_version": FORMAT, "step": done, "optimizer": meta})
                for f in tmp.iterdir():
                    usual_permissions(f)
        if world > 1 and done % checkpoint_every == 0:
            torch.distributed.barrier()  # nobody runs ahead of a checkpoint it might resume from
    final = ema if ema is not None else {n: p.detach().clone() for n, p in params.items()}
    if not all(math.isfinite(t.abs().max().item()) for t in final.values()):
        raise CheckpointError(f"{desc}: the final weights are not finite")
    return final


def read_log(out: Path) -> list[dict]:
    log = out / "log.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.is_file() else []
