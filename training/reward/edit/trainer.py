"""Edit-reward training: the reward trainer's loop (../train/trainer.py) on edit pairs, with region grounding.

One optimizer step reads the step's `batch_size` edit pairs (the same seeded stream as SpatialScore's), puts the
chosen and the rejected edit of each through the model in one pass (each with its source), and minimises
    pair loss (train.loss)  +  train.grounding_weight x (change-map BCE against each edit's true region
                                                        + the coords probe's word-centre error)
The best validation checkpoint is exported as an edit scorer folder (`scorer/`); `checkpoints/step_N/` hold every
trainable weight, the optimizer, the scheduler and the RNG, so `--resume` continues exactly. What is about edits is
here (EditTask): the pairs, the model, the region and probe losses, the report by edit kind and by mistake. Edit runs
train on the CPU, as they always have (EditTask.cpu_only).
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import torch

from ...common.finite import require_finite
from ..config import HeadConfig
from ..models.coords_model import CoordsConfig, build_vocab
from ..train.losses import pair_loss
from ..train.train_config import ConfigError, RewardTrainConfig
from ..train.trainer import SUMMARY_FILE, PairTask, train
from .evaluate import edit_report, forward_pairs
from .folder import create_coords_edit_model, load_edit_model, save_edit_model
from .pairs import EditPair, fingerprint, load_edit_images, read_edit_pairs


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
    err = (out.probed.float() - target.to(out.probed.device)) ** 2
    known = known.to(out.probed.device)
    return 10 * err[known].mean() if known.any() else out.probed.sum() * 0


class EditTask(PairTask):
    """Edit pairs: (instruction, source image, chosen edit, rejected edit), with their edit regions."""

    stage, what, desc, title = "edit-reward", "edit-reward training", "edit reward training", "Edit reward training"
    trained_by = "python -m training.reward train (edit pairs)"
    # Edit scorers have always trained on the CPU (the shipped shapes-edit was made there, and its recipe
    # reproduces it bit for bit only there); a GPU run would change that, so it is not done silently.
    cpu_only = True

    def __init__(self):
        self.images = ImageCache()
        self.probe_layer = 0

    def load_data(self, config):
        return load_edit_data(config)

    def check_data(self, config, train, val):
        super().check_data(config, train, val)
        _check_regions(config, train)

    def fingerprint(self, pairs):
        return fingerprint(pairs)

    def build(self, config, device, train):
        t = config.train
        torch.manual_seed(t.seed)  # before the model: a Qwen edit model's LoRA draws its initial weights
        random.seed(t.seed)
        model = build_edit_model(config, train)
        self.probe_layer = t.grounding_layer if (t.grounding_weight > 0 and hasattr(model, "word_targets")) else 0
        if hasattr(model, "backbone") and hasattr(model.backbone, "ground_probe") and not self.probe_layer:
            model.backbone.ground_probe.requires_grad_(False)
        return model, t.grounding_weight > 0, [n for n, p in model.named_parameters() if p.requires_grad]

    def seed(self, config, rank):
        """Seeded in `build`, before the model was made: what the steps draw follows on from it."""

    def micro_step(self, inner, model, micro, noise, config, step, ground, world):
        t = config.train
        imgs = [self.images(p) for p in micro]
        ins = [p.instruction for p in micro]
        n = len(micro)
        batch = inner.encode([s for s, _, _ in imgs] * 2, [c for _, c, _ in imgs] + [r for _, _, r in imgs], ins + ins)
        out = model(batch, probe_layer=self.probe_layer)
        per_pair = pair_loss(t.loss, out.mean[:n], out.log_std[:n], out.mean[n:], out.log_std[n:], noise=noise)
        region = probe = torch.zeros(())
        if ground:
            region = inner.region_loss(out, [p.chosen_region for p in micro] + [p.rejected_region for p in micro])
            probe = _probe_loss(inner, out, micro)
        total = per_pair.mean() + t.grounding_weight * (region + probe)
        require_finite("the edit-reward loss", total, step,
                       hint="lower train.learning_rate or check the data; the last checkpoint is intact")
        margin = (out.mean[:n] - out.mean[n:]).detach().double()
        stats = torch.stack([per_pair.detach().double().sum(), (margin > 0).double().sum(),
                             region.detach().double() * n, probe.detach().double() * n]).cpu()
        return total * n * world / t.batch_size, stats

    def train_record(self, totals, ground):
        return {"loss": float(totals[0]), "accuracy": float(totals[1]), "grounding": float(totals[2] + totals[3]),
                "region_loss": float(totals[2])}

    def forward_pairs(self, model, pairs, micro_batch, autocast):
        with autocast():
            mc, lc, mr, lr, regions = forward_pairs(model, pairs, micro_batch)
        return (mc, lc, mr, lr), regions

    def val_record(self, pairs, cols, extra):
        mc, _, mr, _ = cols
        report = edit_report(pairs, (mc - mr).numpy(), extra)
        return {"accuracy": report["pairwise_accuracy"], "val_pairs": len(pairs), "val_by_mistake": report["by_mistake"],
                "val_by_edit_kind": report["by_edit_kind"], "val_region_iou": report.get("region_iou")}

    def val_line(self, val):
        iou = val["val_region_iou"] or {}
        return (f"val accuracy {val['val_accuracy']:.4f}, loss {val['val_loss']:.4f}, region IoU "
                f"{iou.get('mean') or 0:.3f}")

    def best_record(self, val):
        return {"val_by_mistake": val["val_by_mistake"], "val_region_iou": val["val_region_iou"]}

    def notes(self, config):
        return {**super().notes(config), "grounding_weight": config.train.grounding_weight}

    def export(self, model, folder, notes):
        return save_edit_model(model, folder, notes)


def train_edit(config: RewardTrainConfig, resume: bool = False, log=print) -> dict:
    """Run (or continue) an edit-reward run into config.output.dir; returns its summary (summary.json)."""
    train(config, resume=resume, task=EditTask(), log=log)
    return json.loads((Path(config.output.dir) / SUMMARY_FILE).read_text(encoding="utf-8"))
