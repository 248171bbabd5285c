"""Reward training: the trainer, its configuration and presets, losses, preference pairs, the trainable model,
optimizer and schedule, metrics, checkpoints and resume."""
