"""SpatialScore reward training, top to bottom: the one loop, for single-image pairs and edit pairs alike.

One optimizer step:
  1. data       the step's `batch_size` pairs are a pure function of (seed, step): an epoch is a seeded
                permutation, and step s reads positions [s*B, (s+1)*B) of the endless epoch stream. Process r
                takes the r-th contiguous share, in micro-batches of `micro_batch_size` pairs.
  2. forward    chosen and rejected images of a micro-batch go through the model in one pass -> Gaussians.
  3. loss       the per-pair loss (losses.py) summed and scaled by processes / B, so that DDP's gradient mean
                over processes gives the mean over the global batch: the same update for any number of
                processes. Monte-Carlo noise is drawn for the whole global batch from (seed, step) and sliced.
  4. update     gradients accumulate locally (no_sync) and are all-reduced once, clipped, AdamW, LR schedule.
  5. records    metrics.jsonl (+ TensorBoard), validation accuracy, curves PNG, the best scorer exported as a
                scorer folder, atomic checkpoints that `--resume` continues exactly.

What depends on the kind of pair is a PairTask: reading the pairs, building the model, one micro-batch's loss, the
validation report and the export. ImageTask below is SpatialScore's (prompt, chosen, rejected); the edit reward's
(instruction, source, chosen edit, rejected edit) is EditTask in ../edit/trainer.py.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...common.atomic import write_json
from ...common.finite import require_finite, require_finite_weights
from ...common.run_folder import owned_run_folder
from ..evaluate import accuracy_report, score_pairs_forward
from .checkpoint import (
    CheckpointError,
    check_resumable,
    list_checkpoints,
    load_checkpoint,
    remove_stale_temporaries,
    rng_state,
    save_checkpoint,
)  # fmt: skip
from .losses import pair_loss, pair_noise
from .metrics import CURVES_FILE, MetricsLog, plot_curves
from .pairs import Pair, check_images, fingerprint, load_pair_images, read_pairs, splits_of
from .resume import apply_resumed_settings
from .train_config import TINY, ConfigError, RewardTrainConfig, accumulation_steps
from .trainable import (
    base_folder,
    build_model,
    build_tiny_base,
    export_scorer,
    make_optimizer,
    make_scheduler,
    prepare_for_training,
    resolve_precision,
)  # fmt: skip

SCORER_DIR = "scorer"  # the best checkpoint, as a scorer folder
SUMMARY_FILE = "summary.json"
NAN_HINT = ("The checkpoints in the output folder and its exported scorer are untouched: lower "
            "train.learning_rate (or set train.max_grad_norm) and continue with --resume.")


@dataclass
class RunResult:
    scorer_path: Path | None
    step: int
    best: dict | None
    records: list[dict]


class PairStream:
    """Endless stream of pair indices: epoch e is a permutation seeded by (seed, e); independent of processes."""

    def __init__(self, n_pairs: int, seed: int):
        self.n, self.seed = n_pairs, seed
        self._epoch, self._perm = -1, None

    def take(self, start: int, count: int) -> list[int]:
        out = []
        for pos in range(start, start + count):
            epoch, offset = divmod(pos, self.n)
            if epoch != self._epoch:
                self._epoch = epoch
                self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            out.append(int(self._perm[offset]))
        return out


def load_data(config: RewardTrainConfig) -> tuple[list[Pair], list[Pair]]:
    d = config.data
    everything = read_pairs(d.train)
    has_splits = bool(splits_of(everything))
    # human reviews: --reviewed-only trains on exactly the accepted (and swapped) pairs; validation always drops
    # the rejected and swaps the swapped, whatever was reviewed (see pairs.apply_reviews)
    train = read_pairs(d.train, split=d.train_split if has_splits else None, reviews=d.reviews)
    if d.val == "none":
        val = []
    elif d.val:
        val_all = read_pairs(d.val)
        val = read_pairs(d.val, split=d.val_split) if splits_of(val_all) else val_all
    elif has_splits and d.val_split in splits_of(everything):
        val = read_pairs(d.train, split=d.val_split)
    else:
        val = []
    return train, val[: d.val_pairs]


def _make_accelerator(config: RewardTrainConfig, cpu_only: bool = False):
    from accelerate import Accelerator
    from accelerate.utils import is_tensorboard_available

    cuda = torch.cuda.is_available() and not cpu_only
    _, mixed, _ = resolve_precision(config, torch.device("cuda" if cuda else "cpu"))
    tracker = config.output.tensorboard and is_tensorboard_available()
    # cpu=True without CUDA: accelerate then runs several launched CPU processes as DDP over gloo (without it,
    # each process of `accelerate launch` would train alone).
    mps = not cpu_only and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return Accelerator(mixed_precision=mixed, cpu=not (cuda or mps), log_with="tensorboard" if tracker else None,
                       project_dir=str(Path(config.output.dir) / "tensorboard") if tracker else None), tracker


def _flat_config(config: RewardTrainConfig) -> dict:
    return {f"{s}.{k}": (v if isinstance(v, (int, float, str, bool)) else str(v))
            for s, section in config.to_dict().items() for k, v in section.items()}


class Validator:
    """Validation pairs sharded over processes; the gathered result is the same on every process."""

    def __init__(self, task: PairTask, pairs: list, config: RewardTrainConfig, accelerator):
        self.task, self.pairs, self.config, self.acc = task, pairs, config, accelerator
        w = accelerator.num_processes
        self.mine = pairs[accelerator.process_index::w]
        self.per_rank = math.ceil(len(pairs) / w) if pairs else 0

    def __call__(self, model) -> dict | None:
        from accelerate.utils import gather_object

        if not self.pairs:
            return None
        inner = self.acc.unwrap_model(model)
        inner.eval()
        t = self.config.train
        cols, extra = self.task.forward_pairs(inner, self.mine, t.micro_batch_size, self.acc.autocast)
        local = torch.full((self.per_rank, 4), float("nan"))
        if self.mine:
            local[: len(self.mine)] = torch.stack(cols, dim=1)
        w = self.acc.num_processes
        gathered = self.acc.gather(local.to(self.acc.device)).cpu().view(w, self.per_rank, 4)
        # pair i lives on rank i % W at row i // W
        rows = torch.stack([gathered[i % w, i // w] for i in range(len(self.pairs))])
        if extra is not None:
            shards = gather_object([list(extra)]) if w > 1 else [list(extra)]
            extra = [shards[i % w][i // w] for i in range(len(self.pairs))]
        mc, lc, mr, lr = rows.unbind(1)
        noise = pair_noise(t.seed, -1, len(self.pairs), t.mc_samples) if t.loss == "mc_gaussian_bt" else None
        loss = pair_loss(t.loss, mc, lc, mr, lr, noise=noise)
        record = self.task.val_record(self.pairs, (mc, lc, mr, lr), extra)
        inner.train()
        return {"val_loss": float(loss.mean()), "val_accuracy": record.pop("accuracy"), **record}


class PairTask:
    """What the reward-training loop asks of a kind of preference pair. Subclasses: ImageTask (here), EditTask
    (../edit/trainer.py)."""

    stage, what, desc, title = "reward", "reward training", "reward training", "SpatialScore training"
    trained_by = "python -m training.reward train"
    cpu_only = False  # True: trains on the CPU even where CUDA is

    def legacy_run(self, out: Path) -> bool:
        """Whether `out` is a run of this task written before run folders carried their stage's marker."""
        return False

    def load_data(self, config: RewardTrainConfig) -> tuple[list, list]:
        raise NotImplementedError

    def check_data(self, config: RewardTrainConfig, train: list, val: list) -> None:
        """Every image of `train` and `val` readable, before anything trains (not a crash at step 900)."""
        check_images(train + val)

    def fingerprint(self, pairs: list) -> str:
        raise NotImplementedError

    def build(self, config: RewardTrainConfig, device: torch.device, train: list) -> tuple[torch.nn.Module, bool,
                                                                                           list[str]]:
        """(the model in train mode, whether the grounding loss is on, the names of its trainable weights)."""
        raise NotImplementedError

    def seed(self, config: RewardTrainConfig, rank: int) -> None:
        """Seed what the training steps draw (dropout) when a run starts (a resumed run restores its RNG)."""
        torch.manual_seed(config.train.seed + 1000 * rank)  # LoRA dropout, per process
        random.seed(config.train.seed + 1000 * rank)

    def micro_step(self, inner, model, micro: list, noise: torch.Tensor | None, config: RewardTrainConfig, step: int,
                   ground: bool, world: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(the loss to back-propagate, summed over the micro-batch's pairs and scaled by processes / batch_size;
        the step's statistics, summed over these pairs), `model` being `inner` behind DDP."""
        raise NotImplementedError

    def train_record(self, totals: torch.Tensor, ground: bool) -> dict:
        """The metrics of a step from its statistics averaged over the batch; "loss" and "accuracy" first."""
        raise NotImplementedError

    def forward_pairs(self, model, pairs: list, micro_batch: int, autocast) -> tuple[tuple[torch.Tensor, ...], list
                                                                                      | None]:
        """((mean_c, log_std_c, mean_r, log_std_r) of each pair, fp32 on the CPU; a per-pair extra or None)."""
        raise NotImplementedError

    def val_record(self, pairs: list, cols: tuple[torch.Tensor, ...], extra: list | None) -> dict:
        """The validation report: "accuracy" (the pairwise accuracy), "val_pairs" and the task's breakdowns."""
        raise NotImplementedError

    def val_line(self, val: dict) -> str:
        return f"val accuracy {val['val_accuracy']:.4f}, loss {val['val_loss']:.4f} ({val['val_pairs']} pairs)"

    def best_record(self, val: dict) -> dict:
        """What the best validation keeps beside step, accuracy and loss (in the scorer's notes, summary.json)."""
        return {}

    def notes(self, config: RewardTrainConfig) -> dict:
        t = config.train
        return {"trained_by": self.trained_by, "data": config.data.train, "loss": t.loss, "batch_size": t.batch_size}

    def export(self, model, folder: Path, notes: dict) -> Path:
        raise NotImplementedError


def check_grounding(config: RewardTrainConfig, model, pairs: list[Pair]) -> bool:
    """Whether this run trains the grounding probe; freezes the probe when it does not (an unused trainable
    weight would stall DDP)."""
    t = config.train
    probe = getattr(getattr(model, "backbone", None), "ground_probe", None)
    if t.grounding_weight <= 0:
        if probe is not None:
            probe.requires_grad_(False)
        return False
    if probe is None:
        raise ConfigError("train.grounding_weight > 0 needs a coords-backbone scorer (model.init_from is not one)")
    if not 1 <= t.grounding_layer <= model.backbone.layers:
        raise ConfigError(f"train.grounding_layer must be in 1..{model.backbone.layers}, got "
                          f"{t.grounding_layer}")
    missing = [p for p in pairs if p.layouts is None]
    if missing:
        raise ConfigError(f"train.grounding_weight > 0 needs scene layouts ('scene' and 'perturbed_scene' with "
                          f"object boxes) in every training row; {len(missing)} of {len(pairs)} have none "
                          f"(first: line {missing[0].line} of {config.data.train})")
    return True


def grounding_loss(model, probed: torch.Tensor, micro: list[Pair]) -> torch.Tensor:
    """Mean squared distance (x10) between each grounded word's probed and true centre, chosen then rejected."""
    prompts = [p.prompt for p in micro] * 2
    layouts = [p.layouts[0] for p in micro] + [p.layouts[1] for p in micro]
    target, known = model.grounding_targets(prompts, layouts)
    err = ((probed.float() - target.to(probed.device)) ** 2).sum(-1)[known.to(probed.device)]
    return 10 * err.mean() if err.numel() else probed.sum() * 0  # (x10: centres live in [0, 1])


class ImageTask(PairTask):
    """SpatialScore's pairs: (prompt, chosen image, rejected image)."""

    def legacy_run(self, out: Path) -> bool:
        """A run written before the folder marker: it has reward-training checkpoints."""
        return bool(list_checkpoints(out))

    def load_data(self, config: RewardTrainConfig) -> tuple[list[Pair], list[Pair]]:
        return load_data(config)

    def fingerprint(self, pairs: list[Pair]) -> str:
        return fingerprint(pairs)

    def build(self, config: RewardTrainConfig, device: torch.device, train: list[Pair]):
        dtype, _, checkpointing = resolve_precision(config, device)
        model = build_model(config, device, dtype, prompts=[p.prompt for p in train])
        ground = check_grounding(config, model, train)
        return model, ground, prepare_for_training(model, checkpointing)

    def micro_step(self, inner, model, micro, noise, config, step, ground, world):
        t = config.train
        images = [load_pair_images(p) for p in micro]
        prompts = [p.prompt for p in micro]
        batch = inner.encode([c for c, _ in images] + [r for _, r in images], prompts + prompts)
        n = len(micro)
        if ground:
            mean, log_std, probed = model(batch, probe_layer=t.grounding_layer)
            ground_loss = grounding_loss(inner, probed, micro)
        else:
            (mean, log_std), ground_loss = model(batch), torch.zeros(())
        per_pair = pair_loss(t.loss, mean[:n], log_std[:n], mean[n:], log_std[n:], noise=noise)
        total = per_pair.sum() + t.grounding_weight * ground_loss * n  # both: sums over pairs
        margin = (mean[:n] - mean[n:]).detach().double().cpu()
        stats = torch.stack([per_pair.detach().double().sum().cpu(),
                             ((margin > 0).double() + 0.5 * (margin == 0).double()).sum(),
                             log_std.detach().double().exp().sum().cpu() / 2, margin.sum(),
                             ground_loss.detach().double().cpu() * n])
        return total * (world / t.batch_size), stats

    def train_record(self, totals, ground):
        return {"loss": float(totals[0]), "accuracy": float(totals[1]), "std": float(totals[2]),
                "margin": float(totals[3]), **({"grounding": float(totals[4])} if ground else {})}

    def forward_pairs(self, model, pairs, micro_batch, autocast):
        return score_pairs_forward(model, pairs, micro_batch, autocast), None

    def val_record(self, pairs, cols, extra):
        mc, lc, mr, lr = cols
        report = accuracy_report(pairs, (mc - mr).numpy())
        return {"accuracy": report["pairwise_accuracy"], "val_pairs": report["pairs"],
                "val_by_perturbations": report["by_perturbations"], "val_by_relation": report["by_relation"],
                "val_std": float(torch.exp(torch.cat([lc, lr])).mean())}

    def best_record(self, val):
        return {"val_by_perturbations": val["val_by_perturbations"]}

    def notes(self, config):
        return {**super().notes(config), "base": base_folder(config) or None}

    def export(self, model, folder, notes):
        return export_scorer(model, folder, notes)


def _is_better(val: dict, best: dict | None) -> bool:
    if best is None:
        return True
    return (val["val_accuracy"], -val["val_loss"]) > (best["val_accuracy"], -best["val_loss"])


def train(config: RewardTrainConfig, resume: bool = False, task: PairTask | None = None, log=None) -> RunResult:
    """Run (or continue, with resume=True) a reward-training run into config.output.dir. `task`: the kind of
    pairs (default: ImageTask, SpatialScore's); `log`: where "resumed from ..." goes (default: nowhere)."""
    task = task or ImageTask()
    main = int(os.environ.get("RANK", "0")) == 0
    # the folder is claimed and locked before anything (the tiny base, tensorboard) is written into it
    with owned_run_folder(config.output.dir, task.stage, task.what, main=main, legacy_run=task.legacy_run):
        return _train(config, resume, task, log)


def _train(config: RewardTrainConfig, resume: bool, task: PairTask, say=None) -> RunResult:
    from accelerate.utils import gather_object
    from tqdm import tqdm

    out = Path(config.output.dir)
    accelerator, tracker = _make_accelerator(config, task.cpu_only)
    accum = accumulation_steps(config, accelerator.num_processes)
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    checkpoints = list_checkpoints(out)
    if checkpoints and not resume:
        raise ConfigError(f"{out} already holds checkpoints (newest {checkpoints[-1].name}); pass --resume to "
                          f"continue that run, or choose a new --out")
    if resume and main:
        remove_stale_temporaries(out)
    if resume and checkpoints:
        check_resumable(checkpoints[-1])  # a damaged file is named before the data and the model load
    train_pairs, val_pairs = task.load_data(config)
    task.check_data(config, train_pairs, val_pairs)
    if len(train_pairs) < config.train.micro_batch_size:
        raise ConfigError(f"data.train: only {len(train_pairs)} training pairs, fewer than one micro-batch "
                          f"({config.train.micro_batch_size})")
    if config.model.base == TINY and not config.model.init_from:
        if main:
            build_tiny_base(config)
        accelerator.wait_for_everyone()
    model, ground, trainable = task.build(config, accelerator.device, train_pairs)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    config_dict = config.to_dict()
    data_id = task.fingerprint(train_pairs)

    start_step, best = 0, None
    if resume and checkpoints:
        fresh = [dict(g) for g in optimizer.param_groups]
        state = load_checkpoint(checkpoints[-1], params, optimizer, scheduler, config_dict, rank)
        changed = apply_resumed_settings(optimizer, scheduler, fresh, state["config"], config)
        if state["data"]["fingerprint"] != data_id:
            raise CheckpointError(f"{checkpoints[-1]}: the training pairs changed since this checkpoint "
                                  f"(fingerprint {state['data']['fingerprint']} -> {data_id})")
        start_step, best = int(state["step"]), state.get("best")
        if say is not None:
            say(f"resumed from {checkpoints[-1].name}")
    else:
        task.seed(config, rank)
    log = MetricsLog(out, resume_step=start_step if resume else None) if main else None
    if resume and checkpoints and changed and main:
        print("settings changed since the checkpoint, applied from now on:\n  " + "\n  ".join(changed))
        log.log({"kind": "resume", "step": start_step, "changed": changed})
    records = log.records if log else []
    if tracker:
        accelerator.init_trackers("spatialscore", config=_flat_config(config))
    ddp_model = accelerator.prepare(model)
    inner = model
    stream = PairStream(len(train_pairs), config.train.seed)
    validate = Validator(task, val_pairs, config, accelerator)
    t = config.train
    per_rank = t.batch_size // world
    notes_base = task.notes(config)
    scorer_path = out / SCORER_DIR
    bar = tqdm(total=t.steps, initial=start_step, disable=not (main and config.output.progress),
               desc=task.desc, unit="step", dynamic_ncols=True)
    started = time.perf_counter()
    step = start_step
    for step in range(start_step + 1, t.steps + 1):
        tick = time.perf_counter()
        indices = stream.take((step - 1) * t.batch_size, t.batch_size)
        mine = indices[rank * per_rank:(rank + 1) * per_rank]
        noise = pair_noise(t.seed, step, t.batch_size, t.mc_samples) if t.loss == "mc_gaussian_bt" else None
        sums = None  # the task's statistics, summed over this process's pairs
        for j in range(accum):
            chunk = slice(j * t.micro_batch_size, (j + 1) * t.micro_batch_size)
            micro = [train_pairs[i] for i in mine[chunk]]
            offset = rank * per_rank + j * t.micro_batch_size
            sync = contextlib.nullcontext() if j == accum - 1 else accelerator.no_sync(ddp_model)
            with sync:
                loss, stats = task.micro_step(inner, ddp_model, micro,
                                              None if noise is None else noise[offset:offset + len(micro)],
                                              config, step, ground, world)
                accelerator.backward(loss)
            sums = stats if sums is None else sums + stats
        grad_norm = accelerator.clip_grad_norm_(list(params.values()), t.max_grad_norm or float("inf"))
        require_finite("the gradient norm", grad_norm, step, NAN_HINT)  # the same on every process
        lr = scheduler.get_last_lr()[0]
        optimizer.step()
        require_finite_weights(params.items(), "the weights after the optimizer step", step, NAN_HINT)
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        totals = accelerator.reduce(sums.to(accelerator.device), reduction="sum").cpu() / t.batch_size
        require_finite("the training loss", totals[0], step, NAN_HINT)
        record = {"kind": "train", "step": step, **task.train_record(totals, ground), "lr": lr,
                  "grad_norm": float(grad_norm), "pairs_per_s": t.batch_size / (time.perf_counter() - tick),
                  "elapsed_s": time.perf_counter() - started}
        last = step == t.steps
        if main and (step % config.output.log_every == 0 or last):
            log.log(record)
            if tracker:
                accelerator.log({f"train/{k}": v for k, v in record.items() if k not in ("kind", "step")}, step=step)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}", acc=f"{record['accuracy']:.2f}")

        every = config.output.eval_every
        if last or (every and step % every == 0):
            val = validate(ddp_model)
            if val is not None:
                require_finite("the validation loss", val["val_loss"], step, NAN_HINT)
            if val is not None and main:
                log.log({"kind": "val", "step": step, **val})
                if tracker:
                    accelerator.log({"val/loss": val["val_loss"], "val/accuracy": val["val_accuracy"]}, step=step)
                bar.write(f"step {step}: {task.val_line(val)}")
            if val is not None and _is_better(val, best):
                best = {"step": step, "val_accuracy": val["val_accuracy"], "val_loss": val["val_loss"],
                        **task.best_record(val)}
                if main and config.output.export == "best":
                    task.export(inner, scorer_path, {**notes_base, "step": step, **best})
            if val is not None and last and main and config.output.export == "last":
                task.export(inner, scorer_path, {**notes_base, "step": step, "export": "last",
                                                 "val_accuracy": val["val_accuracy"], "val_loss": val["val_loss"],
                                                 "best": best})
            if main:
                plot_curves(log.records, out / CURVES_FILE, title=task.title)
        if val_pairs == [] and last and main:  # no validation data: the last weights are the export
            best = {"step": step, "val_accuracy": None, "val_loss": None}
            task.export(inner, scorer_path, {**notes_base, **best})
        every = config.output.checkpoint_every
        if last or (every and step % every == 0):
            rngs = gather_object([rng_state()])
            python_rngs = gather_object([[random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]]])
            if main:
                extra = {"data": {"fingerprint": data_id, "pairs": len(train_pairs),
                                  "position": step * t.batch_size,
                                  "epoch": step * t.batch_size // len(train_pairs)},
                         "best": best, "world_size": world, "trainable": len(trainable)}
                save_checkpoint(out, step, params, optimizer, scheduler, rngs, python_rngs, extra, config_dict,
                                keep=config.output.keep_checkpoints)
            accelerator.wait_for_everyone()
    bar.close()
    if main:
        if log.records:
            plot_curves(log.records, out / CURVES_FILE, title=task.title)
        write_json(out / SUMMARY_FILE, {"steps": step, "best": best, "scorer": str(scorer_path),
                                        "metrics": str(out / "metrics.jsonl"), "curves": str(out / CURVES_FILE),
                                        "train_pairs": len(train_pairs), "val_pairs": len(val_pairs),
                                        "processes": world})
    if tracker:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    return RunResult(scorer_path if (scorer_path.exists() or not main) else None, step, best, records)
