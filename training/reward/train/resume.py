"""A resumed reward-training run uses the settings it is started with, and says which ones changed.

The optimizer's and scheduler's state_dicts bring back the learning rates, betas and schedule of the run that
wrote the checkpoint; left alone, `--resume --steps 66` on a finished 60-step cosine run would train step 61 at the
saved lr 0 while the new checkpoints record 66. Here the config's values are put back and the schedule's factor is
recomputed for the current step under the new settings (steps, warm-up, schedule), so what runs is what is
recorded. Settings a checkpoint cannot change (checkpoint.MUST_MATCH) are refused before this.
"""

from __future__ import annotations

from .train_config import RewardTrainConfig
from .trainable import lr_factor

HYPER = ("lr", "initial_lr", "weight_decay", "betas", "eps")


def changed_settings(saved: dict, now: dict) -> list[str]:
    """Every "section.field: old -> new" that differs, except where the run is written."""
    return [f"{section}.{name}: {saved.get(section, {}).get(name)!r} -> {value!r}"
            for section, values in now.items() for name, value in values.items()
            if saved.get(section, {}).get(name) != value and f"{section}.{name}" != "output.dir"]


def apply_resumed_settings(optimizer, scheduler, fresh_groups: list[dict], saved_config: dict,
                           config: RewardTrainConfig) -> list[str]:
    """Put this run's optimizer settings back after a checkpoint was loaded (`fresh_groups`: the param groups as
    built from the config, before loading), re-derive the current lr, return what changed."""
    for group, fresh in zip(optimizer.param_groups, fresh_groups, strict=True):
        for key in HYPER:
            if key in fresh:
                group[key] = fresh[key]
    scheduler.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
    factor = lr_factor(scheduler.last_epoch, config)
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]  # what get_last_lr() reports for the next step
    return changed_settings(saved_config, config.to_dict())
