"""Frozen base weights stored in fp8, cast to the compute dtype layer by layer (the headless side of fp8 training).

`store_weights(transformer, "fp8_e4m3fn", compute_dtype)` stores every frozen Linear of the transformer's blocks
in fp8 and casts it to the compute dtype just before the layer runs and back after, with diffusers' layerwise
casting hooks (`diffusers.hooks.apply_layerwise_casting`, diffusers >= 0.32). Why those, and why these layers:

- They are the diffusers mechanism, hooks on the leaf layers; the model's own forward is unchanged, so the
  same code path (peft LoRA, gradient checkpointing, SDPA) runs with or without fp8. Checked on diffusers 0.42:
  with peft LoRA layers wrapping the hooked Linear, backward gives the LoRA exactly the gradients of the same
  weights dequantized to the compute dtype, with and without checkpointing, and the fp8 bytes never change
  (tests/grpo/test_weight_storage.py).
- The LoRA's own lora_A / lora_B are skipped: they train in fp32 as without fp8.
- Every Linear inside the double and single blocks is stored in fp8, the adaLN modulation projections
  (`norm1.linear`, `norm.linear`) included, as ComfyUI does with a `fp8_e4m3fn` UNETLoader. diffusers' own
  `enable_layerwise_casting` would keep every module whose name contains "norm" in the compute dtype, that is the
  modulation projections: 3.2 B of FLUX.1-dev's 11.9 B parameters, +3.2 GB at bf16. Left in the compute dtype:
  the embedders, the final norm and projection and the positional embedding (0.3% of FLUX.1-dev's weights),
  which see every token of every forward.

Why not torchao's float8 training or fp8 matmuls: those need an sm89+ GPU and change the arithmetic; this
changes only how the frozen weights are stored, and the computation runs in the compute dtype as before. The
price is one cast per layer per forward (and per recomputation with checkpointing), a memory-bound copy.
"""

from __future__ import annotations

import torch

# ComfyUI's UNETLoader weight_dtype names; "default" keeps the dtype the model was loaded in
WEIGHT_DTYPES = {"default": None, "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}
# module names (re.search) left in the compute dtype: the LoRA's own layers, and everything outside the blocks
KEEP_PATTERNS = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "pos_embed", r"^x_embedder$",
                 r"^img_in$", r"^context_embedder$", r"^txt_in$", r"^time_text_embed", r"^time_embed",
                 r"^norm_out", r"^proj_out$", r"^txt_norm$")  # fmt: skip


def store_weights(module: torch.nn.Module, weight_dtype: str, compute_dtype: torch.dtype) -> int:
    """Store `module`'s frozen block Linears in `weight_dtype`, cast to `compute_dtype` where used.

    Returns the number of parameters now stored in fp8 (0 for "default"). Call after the LoRA is attached.
    """
    storage = WEIGHT_DTYPES[weight_dtype]
    if storage is None:
        return 0
    from diffusers.hooks import apply_layerwise_casting

    apply_layerwise_casting(module, storage_dtype=storage, compute_dtype=compute_dtype,
                            skip_modules_pattern=KEEP_PATTERNS)  # fmt: skip
    trainable = [n for n, p in module.named_parameters() if p.requires_grad and p.dtype == storage]
    if trainable:
        raise RuntimeError(f"fp8 storage reached trainable parameters: {trainable[:3]}")
    return sum(p.numel() for p in module.parameters() if p.dtype == storage)


def parameter_bytes(module: torch.nn.Module) -> dict[str, int]:
    """Bytes of `module`'s parameters by dtype name (what its weights really take, fp8 or not)."""
    out: dict[str, int] = {}
    for p in module.parameters():
        key = str(p.dtype).removeprefix("torch.")
        out[key] = out.get(key, 0) + p.numel() * p.element_size()
    return out
