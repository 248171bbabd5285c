"""A device name from the user, checked before any model loads: `--device cuda` on a machine without CUDA is a
one-line message, not an assertion deep inside torch."""

from __future__ import annotations

import torch


def check_device(name: str | None, what: str = "--device") -> torch.device | None:
    """`torch.device(name)` if this machine has it; None stays None (the caller's default). ValueError otherwise."""
    if name is None or name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{what} {name!r} is not a device name (expected cpu, cuda, cuda:1, mps)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{what} {name}: this torch has no usable CUDA GPU (torch.cuda.is_available() is "
                             "False); use --device cpu or install a CUDA build of torch")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"{what} {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"{what} {name}: MPS is not available on this machine")
    return device
