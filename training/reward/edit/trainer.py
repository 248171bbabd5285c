"""Edit-reward training: the Gaussian Bradley-Terry objective plus region grounding, resumable after a kill.

One optimizer step reads the step's `batch_size` edit pairs (a pure function of (seed, step), as the SpatialScore
trainer's PairStream), puts the chosen and the rejected edit of each through the model in one pass (each with its
source), and minimises
    pair loss (train.loss)  +  train.grounding_weight x (change-map BCE against each edit's true region
                                                        + the coords probe's word-centre error)
The best validation checkpoint is exported as an edit scorer folder (`scorer/`); `checkpoints/step_N/` hold every
weight, the optimizer, the scheduler and the RNG, so `--resume` continues exactly. Single process (the edit
scorers trained here are small; a Qwen2.5-VL edit model trains the same way, on one device).
"""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import torch

from ...common import checkpointing as ckpt
from ...common.atomic import write_json
from ...common.finite import require_finite
from ...common.run_folder import owned_run_folder
from ..config import HeadConfig
from ..models.coords_model import CoordsConfig, build_vocab
from ..train.losses import pair_loss, pair_noise
from ..train.metrics import CURVES_FILE, MetricsLog, plot_curves
from ..train.train_config import ConfigError, RewardTrainConfig
from ..train.trainable import make_optimizer, make_scheduler
from ..train.trainer import PairStream
from .evaluate import edit_report, forward_pairs
from .folder import create_coords_edit_model, load_edit_model, save_edit_model
from .pairs import EditPair, fingerprint, load_edit_images, read_edit_pairs

SCORER_DIR = "scorer"
STAGE = "edit-reward"
FORMAT_VERSION = 1
MUST_MATCH = ("model.backbone", "model.init_from", "train.loss", "train.batch_size", "train.seed", "data.train")


def load_edit_data(config: RewardTrainConfig) -> tuple[list[EditPair], list[EditPair]]:
    d = config.data
    everything = read_edit_pairs(d.train)
    splits = {p.split for p in everything if p.split}
    train = [p for p in everything if p.split == d.train_split] if splits and d.train_split != "all" else everything
    if not train:
        raise ConfigError(f"data.train: no edit pairs in split {d.train_split!r} of {d.train}")
    if d.val == "none":
        val = []
    elif d.val:
        val_all = read_edit_pairs(d.val)
        val = [p for p in val_all if p.split == d.val_split] if any(p.split for p in val_all) else val_all
    else:
        val = [p for p in everything if p.split == d.val_split]
    return train, val[: d.val_pairs]


def build_edit_model(config: RewardTrainConfig, train: list[EditPair]):
    m = config.model
    if m.init_from:
        model = load_edit_model(m.init_from, device="cpu")
        for p in model.parameters():
            p.requires_grad_(True)
        return model.train()
    if m.backbone == "coords":
        coords = CoordsConfig(**dataclasses.asdict(config.coords), vocab=build_vocab(p.instruction for p in train))
        head = HeadConfig(hidden_size=config.head.hidden_size, init_log_std=config.head.init_log_std)
        model = create_coords_edit_model(coords, head, seed=config.train.seed).train()
        model.config.instructions = instruction_form(p.instruction for p in train)
        return model
    from .qwen_edit import create_qwen_edit_model

    return create_qwen_edit_model(config).train()


def instruction_form(instructions) -> str | None:
    """"shapes-edit" when every training instruction is in a shapes-edit plain form: the scorer then refuses other
    wordings (its vocabulary knows nothing else) instead of scoring them silently."""
    from ...dataset.edit.instructions import InstructionParseError, parse_instruction

    try:
        for text in instructions:
            parse_instruction(text)
    except InstructionParseError:
        return None
    return "shapes-edit"


def _check_regions(config: RewardTrainConfig, pairs: list[EditPair]) -> None:
    if config.train.grounding_weight <= 0:
        return
    missing = [p for p in pairs if p.chosen_region is None or p.rejected_region is None]
    if missing:
        raise ConfigError(f"train.grounding_weight > 0 needs 'edit_region' and 'rejected_region' in every training "
                          f"row; {len(missing)} of {len(pairs)} have none (first: line {missing[0].line} of "
                          f"{config.data.train}); set train.grounding_weight=0 to train without region grounding")


class ImageCache:
    """Decoded pair images by path: every image of a small dataset is decoded once, not once an epoch."""

    def __init__(self, limit: int = 200_000):
        self.images: dict = {}
        self.limit = limit

    def __call__(self, pair: EditPair):
        key = (pair.source, pair.chosen, pair.rejected)
        if key not in self.images:
            if len(self.images) >= self.limit:
                return load_edit_images(pair)
            self.images[key] = load_edit_images(pair)
        return self.images[key]


def _probe_loss(model, out, micro: list[EditPair]) -> torch.Tensor:
    if out.probed is None or any(p.scenes is None for p in micro):
        return torch.zeros(())
    ins = [p.instruction for p in micro] * 2
    scenes = [(p.scenes["source"], p.scenes["chosen"]) for p in micro]
    scenes += [(p.scenes["source"], p.scenes["rejected"]) for p in micro]
    target, known = model.word_targets(ins, scenes)
    err = (out.probed.float() - target) ** 2
    return 10 * err[known].mean() if known.any() else out.probed.sum() * 0


def _validate(model, val: list[EditPair], config: RewardTrainConfig) -> dict | None:
    if not val:
        return None
    model.eval()
    mc, lc, mr, lr, regions = forward_pairs(model, val, config.train.micro_batch_size)
    model.train()
    t = config.train
    noise = pair_noise(t.seed, -1, len(val), t.mc_samples) if t.loss == "mc_gaussian_bt" else None
    loss = pair_loss(t.loss, mc, lc, mr, lr, noise=noise)
    report = edit_report(val, (mc - mr).numpy(), regions)
    return {"val_loss": float(loss.mean()), "val_accuracy": report["pairwise_accuracy"], "val_pairs": len(val),
            "val_by_mistake": report["by_mistake"], "val_by_edit_kind": report["by_edit_kind"],
            "val_region_iou": report.get("region_iou")}


def train_edit(config: RewardTrainConfig, resume: bool = False, log=print) -> dict:
    """Run (or continue) an edit-reward run into config.output.dir; returns its summary."""
    from tqdm import tqdm

    out = Path(config.output.dir)
    with owned_run_folder(out, STAGE, "edit-reward training"):
        checkpoints = ckpt.list_checkpoints(out)
        if checkpoints and not resume:
            raise ConfigError(f"{out} already holds checkpoints (newest {checkpoints[-1].name}); pass --resume to "
                              "continue that run, or choose a new --out")
        train, val = load_edit_data(config)
        t = config.train
        if t.batch_size % t.micro_batch_size:
            raise ConfigError(f"train.batch_size={t.batch_size} is not a multiple of train.micro_batch_size="
                              f"{t.micro_batch_size}")
        _check_regions(config, train)
        torch.manual_seed(t.seed)
        random.seed(t.seed)
        model = build_edit_model(config, train)
        probe_layer = t.grounding_layer if (t.grounding_weight > 0 and hasattr(model, "word_targets")) else 0
        if hasattr(model, "backbone") and hasattr(model.backbone, "ground_probe") and not probe_layer:
            model.backbone.ground_probe.requires_grad_(False)
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        optimizer = make_optimizer(model, config)
        scheduler = make_scheduler(optimizer, config)
        config_dict = config.to_dict()
        data_id = fingerprint(train)
        start, best = 0, None
        if resume and checkpoints:
            path = checkpoints[-1]
            state = ckpt.read_state(path, FORMAT_VERSION)
            ckpt.check_same_setup(path, state["config"], config_dict, MUST_MATCH)
            if state["fingerprint"] != data_id:
                raise ckpt.CheckpointError(f"{path}: the training pairs changed since this checkpoint")
            ckpt.copy_params(path, ckpt.load_tensors(path, "trainable.safetensors"), params)
            ckpt.load_optimizer(optimizer, path / "optimizer.safetensors", state["optimizer"])
            scheduler.load_state_dict({**scheduler.state_dict(), **state["scheduler"]})
            ckpt.set_rng_state(ckpt.load_tensors(path, "rng.safetensors"))
            start, best = int(state["step"]), state.get("best")
            log(f"resumed from {path.name}")
        metrics = MetricsLog(out, resume_step=start if resume else None)
        stream = PairStream(len(train), t.seed)
        notes = {"trained_by": "python -m training.reward train (edit pairs)", "data": config.data.train,
                 "loss": t.loss, "batch_size": t.batch_size, "grounding_weight": t.grounding_weight}
        bar = tqdm(total=t.steps, initial=start, disable=not config.output.progress, desc="edit reward training",
                   unit="step", dynamic_ncols=True)
        started = time.perf_counter()
        cache = ImageCache()
        for step in range(start + 1, t.steps + 1):
            tick = time.perf_counter()
            idx = stream.take((step - 1) * t.batch_size, t.batch_size)
            noise = pair_noise(t.seed, step, t.batch_size, t.mc_samples) if t.loss == "mc_gaussian_bt" else None
            sums = torch.zeros(4, dtype=torch.float64)  # loss, correct, region loss, probe loss
            for j in range(0, t.batch_size, t.micro_batch_size):
                micro = [train[i] for i in idx[j:j + t.micro_batch_size]]
                imgs = [cache(p) for p in micro]
                ins = [p.instruction for p in micro]
                n = len(micro)
                batch = model.encode([s for s, _, _ in imgs] * 2, [c for _, c, _ in imgs] + [r for _, _, r in imgs],
                                     ins + ins)
                out_ = model(batch, probe_layer=probe_layer)
                per_pair = pair_loss(t.loss, out_.mean[:n], out_.log_std[:n], out_.mean[n:], out_.log_std[n:],
                                     noise=None if noise is None else noise[j:j + n])
                region = probe = torch.zeros(())
                if t.grounding_weight > 0:
                    region = model.region_loss(out_, [p.chosen_region for p in micro] +
                                               [p.rejected_region for p in micro])
                    probe = _probe_loss(model, out_, micro)
                total = per_pair.mean() + t.grounding_weight * (region + probe)
                require_finite("the edit-reward loss", total, step,
                               hint="lower train.learning_rate or check the data; the last checkpoint is intact")
                (total * n / t.batch_size).backward()
                margin = (out_.mean[:n] - out_.mean[n:]).detach().double()
                sums += torch.stack([per_pair.detach().double().sum(), (margin > 0).double().sum(),
                                     region.detach().double() * n, probe.detach().double() * n])
            grad_norm = torch.nn.utils.clip_grad_norm_(list(params.values()), t.max_grad_norm or float("inf"))
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            avg = sums / t.batch_size
            record = {"kind": "train", "step": step, "loss": float(avg[0]), "accuracy": float(avg[1]),
                      "grounding": float(avg[2] + avg[3]), "region_loss": float(avg[2]), "lr": lr,
                      "grad_norm": float(grad_norm), "pairs_per_s": t.batch_size / (time.perf_counter() - tick),
                      "elapsed_s": time.perf_counter() - started}
            if step % config.output.log_every == 0 or step == t.steps:
                metrics.log(record)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['accuracy']:.2f}")
            last = step == t.steps
            every = config.output.eval_every
            if last or (every and step % every == 0):
                v = _validate(model, val, config)
                if v is not None:
                    metrics.log({"kind": "val", "step": step, **v})
                    iou = v["val_region_iou"] or {}
                    bar.write(f"step {step}: val accuracy {v['val_accuracy']:.4f}, loss {v['val_loss']:.4f}, region "
                              f"IoU {iou.get('mean') or 0:.3f}")
                    if best is None or (v["val_accuracy"], -v["val_loss"]) > (best["val_accuracy"], -best["val_loss"]):
                        best = {"step": step, "val_accuracy": v["val_accuracy"], "val_loss": v["val_loss"],
                                "val_by_mistake": v["val_by_mistake"], "val_region_iou": v["val_region_iou"]}
                        save_edit_model(model, out / SCORER_DIR, {**notes, **best})
                elif last:
                    best = {"step": step, "val_accuracy": None, "val_loss": None}
                    save_edit_model(model, out / SCORER_DIR, {**notes, **best})
                plot_curves(metrics.records, out / CURVES_FILE, title="Edit reward training")
            every = config.output.checkpoint_every
            if last or (every and step % every == 0):
                with ckpt.writing_checkpoint(out, step, config.output.keep_checkpoints) as tmp:
                    ckpt.save_params(params, tmp / "trainable.safetensors")
                    meta = ckpt.save_optimizer(optimizer, tmp / "optimizer.safetensors")
                    from safetensors.torch import save_file

                    save_file(ckpt.rng_state(), str(tmp / "rng.safetensors"))
                    ckpt.write_state(tmp, {"format_version": FORMAT_VERSION, "step": step, "optimizer": meta,
                                           "scheduler": {k: v for k, v in scheduler.state_dict().items()
                                                         if k != "lr_lambdas"},
                                           "config": config_dict, "fingerprint": data_id, "best": best})
        bar.close()
        summary = {"steps": t.steps, "best": best, "scorer": str(out / SCORER_DIR), "train_pairs": len(train),
                   "val_pairs": len(val), "metrics": str(out / "metrics.jsonl"), "curves": str(out / CURVES_FILE)}
        write_json(out / "summary.json", summary)
        return summary
