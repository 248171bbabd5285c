"""Per-phase measurement: peak memory by kind (MemTracker), FLOPs (FlopCounterMode), predicted GPU time.

Models are built on fake tensors (fake.py); everything else (token ids, image grids, noise) stays real and small,
so data-dependent code runs as it does on a GPU, and any op touching a weight yields a fake tensor. MemTracker
then counts each tensor's bytes by kind, and FlopCounterMode the FLOPs of each matmul, convolution and attention.

A phase's memory is what lives on the accelerator during it: the weights of the modules resident in that phase
(`resident`), plus whatever the phase itself allocates (activations, temporaries, gradients, optimizer state).
Modules off the accelerator in a phase are not counted (the real code moves them to the CPU there).
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass, field

import torch
from torch.distributed._tools.mem_tracker import _TOTAL_KEY, MemTracker
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

GIB = 2**30
PEAK_BF16 = 989e12  # H100 / H200 SXM dense bf16 tensor-core peak, FLOP/s
# What fraction of that peak the predicted times assume. Large-model bf16 training and inference on H100 reach
# 35-45% model-FLOP utilisation end to end (Llama 3 pre-training reported 38-43%; FLUX.1-dev diffusers inference at
# 1024-4096 tokens a sample sits in the same range): the matmuls run at 60-70% of peak, attention, norms, RoPE,
# elementwise ops and launches take the rest. The counted FLOPs include the checkpointing recompute (they are the
# work the GPU does), so 40% of peak on executed FLOPs is the assumption; --utilisation changes it.
DEFAULT_UTILISATION = 0.40
# A card of N GB "fits" a phase when peak + CUDA context and cuBLAS workspace (~1 GiB) stays within 95% of its
# memory (the rest lost to allocator fragmentation). Usable GiB: RTX 4090 / A6000 / H100-80GB.
CARDS = {"24": 23.99, "48": 47.99, "80": 79.65}
CONTEXT_GIB, FRAGMENTATION = 1.0, 0.95
KINDS = ("Parameter", "Buffer", "Gradient", "Optstate", "Activation", "Temp", "Other")


def _register_cpu_attention_flops() -> None:
    """Fake tensors run attention as the CPU flash kernel, which FlopCounterMode does not count by default."""
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten
    forward, backward = (aten._scaled_dot_product_flash_attention_for_cpu,
                         aten._scaled_dot_product_flash_attention_for_cpu_backward)
    if forward not in fc.flop_registry:
        register_flop_formula(forward)(
            lambda q, k, v, *args, out_shape=None, **kwargs: fc.sdpa_flop_count(q, k, v))
    if backward not in fc.flop_registry:
        register_flop_formula(backward)(
            lambda grad, q, k, v, *args, out_shape=None, **kwargs: fc.sdpa_backward_flop_count(grad, q, k, v))


_register_cpu_attention_flops()


class PeakTracker(MemTracker):
    """MemTracker keeping only the global peak: its per-module peak snapshots (a deep copy per module per op)
    made one fake FLUX.1-dev forward take 50 s instead of 5 s. The global peak and its by-kind split are the
    ones MemTracker computes."""

    def _update_peak_stats(self, peak_state) -> None:  # noqa: ARG002 (MemTracker's signature)
        for dev, snap in self._curr_mem_snap.items():
            if self._peak_mem.get(dev, 0) < snap[_TOTAL_KEY]:
                self._peak_mem[dev] = snap[_TOTAL_KEY]
                self._peak_mem_snap[dev] = dict(snap)

    def _pre_fw_hook(self, module, inputs) -> None:
        # A root module called again in one phase (GRPO's reference forward after the policy forward) makes
        # MemTracker refuse ("multiple iterative calls"); its per-module statistics are not used here, so they are
        # cleared instead. The global peak and the gradient hooks are kept.
        if module in self.memory_tracking and not self._mod_tracker.is_bw:
            parents = set(self._mod_tracker.parents) - {self._mod_tracker.get_known_fqn(module)}
            if len(parents) == 1 and "Global" in parents:
                self.memory_tracking.clear()
        super()._pre_fw_hook(module, inputs)

    def _track_module_params_and_buffers(self, module, install_grad_hooks: bool = True):
        # MemTracker hooks every parameter for its gradient; a frozen weight cannot take a hook, so only the
        # trainable ones (LoRA, the reward-token row, the head) get it.
        result = super()._track_module_params_and_buffers(module, install_grad_hooks=False)
        if install_grad_hooks:
            kind = _grad_kind()
            for param in module.parameters():
                if param.requires_grad and self._param_to_grad_hook_handles.get(param, None) is None:
                    def track(grad, kind=kind):
                        self._update_and_maybe_create_winfos(grad, kind)
                    self._param_to_grad_hook_handles[param] = (
                        param.register_hook(track), param.register_post_accumulate_grad_hook(lambda p: track(p.grad)))
        return result


class _NoModuleTracking:
    """What FlopCounterMode's per-module tracker is replaced by: every FLOP counts under "Global" only."""

    parents = frozenset({"Global"})

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        pass


class TotalFlops(FlopCounterMode):
    """FlopCounterMode counting only the total. Its ModuleTracker hooks every module's outputs for backward, and
    those hooks keep the activations inside a checkpointed block alive until backward: with it, a FLUX.1-dev
    training micro-batch measured 9.5 GiB of activations a sample instead of 0.7 (31 instead of about 1
    [tokens, width] tensors a block), as if gradient checkpointing were off. The FLOPs are the same."""

    def __init__(self):
        super().__init__(display=False)
        self.mod_tracker = _NoModuleTracking()


@dataclass
class Phase:
    name: str
    by_kind: dict[str, int]  # bytes at the phase's peak
    flops: float  # FLOPs of the phase as run (before `repeat`)
    repeat: float = 1.0  # identical repetitions the real step makes of what was run (FLOPs are multiplied)
    wall_s: float = 0.0  # CPU seconds the fake run took
    note: str = ""
    resident: dict[str, int] = field(default_factory=dict)  # weight bytes by module resident in this phase

    @property
    def peak(self) -> int:
        return sum(self.by_kind.values())

    def tflop(self) -> float:
        return self.flops * self.repeat / 1e12

    def predicted_s(self, utilisation: float) -> float:
        return self.flops * self.repeat / (PEAK_BF16 * utilisation)

    def without(self, modules: dict[str, int]) -> Phase:
        """This phase with the named modules' weights off the accelerator (their parameters not counted)."""
        gone = sum(b for name, b in modules.items() if name in self.resident)
        by_kind = dict(self.by_kind)
        by_kind["Parameter"] = by_kind.get("Parameter", 0) - gone
        return Phase(self.name, by_kind, self.flops, self.repeat, self.wall_s, self.note,
                     {k: v for k, v in self.resident.items() if k not in modules})


def param_bytes(*modules: torch.nn.Module) -> int:
    seen, total = set(), 0
    for m in modules:
        for p in m.parameters():
            if id(p) not in seen:
                seen.add(id(p))
                total += p.numel() * p.element_size()
    return total


class Meter:
    """Runs phases one after another; each phase gets its own peak tracker and FLOP counter."""

    def __init__(self):
        self.phases: list[Phase] = []

    @contextlib.contextmanager
    def phase(self, name: str, resident: dict[str, torch.nn.Module], optimizers=(), repeat: float = 1.0,
              note: str = ""):
        """Measure the body as phase `name`; `resident`: the modules on the accelerator during it, by name."""
        gc.collect()  # the tracker sees every live tensor: garbage of an earlier run must not count, whenever GC runs
        tracker, counter = PeakTracker(), TotalFlops()
        tracker.track_external(*resident.values(), *optimizers)
        for opt in optimizers:  # gradients alive from an earlier phase (accumulation) belong to this one too
            for group in opt.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        tracker._update_and_maybe_create_winfos(p.grad, _grad_kind())
        started = time.perf_counter()
        with tracker, counter:
            yield
        peak = tracker.get_tracker_snapshot("peak")
        by_kind = dict.fromkeys(KINDS, 0)
        for snap in peak.values():
            for kind, value in snap.items():
                if kind != _TOTAL_KEY:
                    by_kind[getattr(kind, "value", str(kind))] += value
        self.phases.append(Phase(name, by_kind, float(counter.get_total_flops()), repeat,
                                 time.perf_counter() - started, note,
                                 {k: param_bytes(m) for k, m in resident.items()}))


def _grad_kind():
    from torch.distributed._tools.mem_tracker import _MemRefType

    return _MemRefType.GRAD


def fits(phases: list[Phase]) -> dict[str, bool]:
    worst = max(p.peak for p in phases) / GIB
    return {card: worst + CONTEXT_GIB <= usable * FRAGMENTATION for card, usable in CARDS.items()}


def card_limit_gib(card: str) -> float:
    """The highest phase peak a card holds: 95% of its memory less the CUDA context."""
    return CARDS[card] * FRAGMENTATION - CONTEXT_GIB


def breaking_phases(phases: list[Phase], card: str) -> list[Phase]:
    """The phases that do not fit the card, in step order (empty when the step fits)."""
    return [p for p in phases if p.peak / GIB > card_limit_gib(card)]
