"""`FlowPolicy` over the user's ComfyUI Flux: a ModelPatcher, its CLIP and its VAE, with a trainable LoRA.

The GRPO node drives training.grpo.trainer.train with this policy; the SDE, advantages, loss, checkpoints and LoRA
export are the headless package's, this file only answers the interface's questions the ComfyUI way:

- LoRA: ComfyUI's own mechanism, as comfy_extras/nodes_train.py does: weight wrappers on a *cloned* ModelPatcher,
  so the user's MODEL is never changed and ComfyUI's casting (`ops.cast_bias_weight`) carries the gradient to the
  adapter. Why not peft: ComfyUI's Flux fuses q, k, v (and the single blocks' MLP input) into one Linear, while the
  exported file and the headless backend adapt diffusers' separate to_q / to_k / to_v / proj_mlp. A weight wrapper
  adds one low-rank delta per diffusers module into its rows of the fused weight (the row map is ComfyUI's own
  `comfy.utils.flux_to_diffusers`), which is exactly the diffusers LoRA; peft would put one shared-A adapter on the
  fused matrix, a different model that the diffusers export could not represent. The unit test holds the two
  backends to 1e-4 on velocities and log-probs. The delta is added in the weight's dtype: in fp32 that is exact; in
  bf16 the merged weight is rounded to bf16 (as ComfyUI's LoRA loader does when it patches weights).
- Gradient checkpointing of every double and single block (nodes_train's patch, applied only for the duration of a
  forward with gradients): it saves memory, and Flux's in-place residual adds in comfy/ldm/flux/layers.py would
  otherwise fail in backward.
- Text through the CLIP input (`tokenize` / `encode_from_tokens`, what CLIPTextEncode does), decoding through the
  VAE input, the schedule from the MODEL's own model_sampling ("simple", as KSampler's default), so a
  ModelSamplingFlux node in front of the GRPO node is respected.
- comfy.model_management places the policy: loaded fully (`force_full_load`) before each forward, so a scorer that
  borrowed the GPU in between simply gets it back.
"""

from __future__ import annotations

import contextlib
import re
from collections import OrderedDict
from collections.abc import Sequence

import torch

# inside ComfyUI the pack is not on sys.path: this puts its `training` package in sys.modules first
from ..logic.training_import import import_training

import_training("grpo")
from training.grpo.lora import PREFIX, target_regex  # noqa: E402
from training.grpo.policy import PromptEmbeds  # noqa: E402

PROMPT_CACHE_SIZE = 256


class FusedLoRA(torch.nn.Module):
    """One ComfyUI weight's LoRA: a low-rank delta per diffusers module, placed in that module's rows.

    Called by ComfyUI with the (cast) weight, returns weight + delta. `enabled` False: the reference model.
    """

    def __init__(self, weight_shape: torch.Size, parts: list[tuple[str, int, int]], rank: int, alpha: float,
                 generator: torch.Generator):
        super().__init__()
        self.rows, self.cols = int(weight_shape[0]), int(weight_shape[1])
        self.parts = sorted(parts, key=lambda p: p[1])  # (diffusers module name, row offset, rows)
        self.scale = alpha / rank
        self.enabled = True
        self.lora_A = torch.nn.ParameterList()
        self.lora_B = torch.nn.ParameterList()
        for _, _, size in self.parts:
            # peft's "gaussian" init: A ~ N(0, 1/rank), B = 0, so the policy starts as the base model
            a = torch.randn(rank, self.cols, generator=generator) / rank
            self.lora_A.append(torch.nn.Parameter(a))
            self.lora_B.append(torch.nn.Parameter(torch.zeros(size, rank)))

    def delta(self) -> torch.Tensor:
        pieces, row = [], 0
        for (_, offset, size), a, b in zip(self.parts, self.lora_A, self.lora_B, strict=True):
            if offset > row:
                pieces.append(a.new_zeros(offset - row, self.cols))
            pieces.append((b @ a) * self.scale)
            row = offset + size
        if row < self.rows:
            pieces.append(pieces[0].new_zeros(self.rows - row, self.cols))
        return torch.cat(pieces)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return weight
        return weight + self.delta().to(weight.device, weight.dtype)

    def move_to(self, device=None) -> int:
        if device is not None:
            for p in self.parameters():
                p.data = p.data.to(device)
        return sum(p.numel() * p.element_size() for p in self.parameters())


def lora_layout(unet_config: dict, state_keys: dict[str, torch.Size], targets: list[str], key_map=None,
                family: str = "Flux") -> dict[str, list]:
    """{ComfyUI weight key: [(diffusers module, row offset, rows)]} for the diffusers modules `targets` match.

    `key_map`: ComfyUI's diffusers -> ComfyUI key map of the family (comfy.utils.flux_to_diffusers when None; SD3's is
    mmdit_to_diffusers), the one comfy/lora.py reads LoRA files with, so the export loads back onto the same rows.
    """
    import comfy.utils

    key_map = key_map or comfy.utils.flux_to_diffusers
    pattern = target_regex(targets)
    layout: dict[str, list] = {}
    for diffusers_key, target in key_map(unet_config, output_prefix="diffusion_model.").items():
        if not diffusers_key.endswith(".weight"):
            continue
        module = diffusers_key[: -len(".weight")]
        if not re.fullmatch(pattern, module):
            continue
        if isinstance(target, str):
            key, offset, size = target, 0, None
        else:  # a slice of a fused weight: (key, (dim 0, row offset, rows))
            key, (_, offset, size) = target[0], target[1]
        if key not in state_keys:
            continue
        rows = state_keys[key][0] if size is None else size
        layout.setdefault(key, []).append((module, offset, rows))
    missing = [t for t in targets if not any(m.endswith("." + t) for parts in layout.values() for m, _, _ in parts)]
    if not layout or missing:
        raise ValueError(f"LoRA targets {missing or targets} match no module of this {family} model's blocks")
    return layout


def _fresh(value):
    return value.clone() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


@contextlib.contextmanager
def norm_input_copies(blocks, enabled: bool):
    """Inside the context (when `enabled`), each LayerNorm in `blocks` normalises a copy of its input.

    For blocks that add a residual in place into the tensor a LayerNorm saved for its backward (Chroma's
    `img.addcmul_(gate, ...)` after `img_norm2(img)`): autograd refuses that ("modified by an inplace operation"), and
    under checkpointing the recomputed block overwrites the saved input silently (LoRA gradients wrong by up to 3% of
    the largest on tests/nodes/test_comfy_chroma.py's model)."""
    norms = [m for block in blocks for m in block.modules() if isinstance(m, torch.nn.LayerNorm)] if enabled else []
    handles = [norm.register_forward_pre_hook(lambda _, args: (args[0].clone(), *args[1:])) for norm in norms]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def checkpointed(block: torch.nn.Module, copy_norm_inputs: bool = False):
    """The block's forward under non-reentrant activation checkpointing, on copies of its tensor inputs.

    Why the copies: Flux's blocks add their residuals in place into their inputs (`x += ...` in SingleStreamBlock,
    `txt += ...` in DoubleStreamBlock), and each block's output is the next block's input. Checkpointing recomputes a
    block in backward from the input tensors it was given, by reference: without a copy, those hold the residuals of
    this and every later block by then, so the recomputed activations, and the LoRA gradients, are silently wrong
    (up to 2.8% of the largest gradient on the shapes generator; nodes_train's `patch` has the same flaw). A copy
    per block costs one activation of the block's width.
    """
    original = block.forward

    def run(args, kwargs):
        # the backward's recomputation runs this again, after the forward's context has closed: the copies of the
        # norms' inputs are made here, so the recomputed block makes them too
        with norm_input_copies([block], copy_norm_inputs):
            return original(*[_fresh(a) for a in args], **{k: _fresh(v) for k, v in kwargs.items()})

    def forward(*args, **kwargs):
        return torch.utils.checkpoint.checkpoint(run, args, kwargs, use_reentrant=False)

    block.forward = forward
    return original


@contextlib.contextmanager
def checkpointing(blocks, enabled: bool, copy_norm_inputs: bool = False):
    """Every block of `blocks` checkpointed (`checkpointed`) inside the context when `enabled`, restored after.
    `copy_norm_inputs`: the blocks' LayerNorms run on copies of their inputs in a forward with gradients, checkpointed
    or not (`norm_input_copies`)."""
    blocks = list(blocks)
    originals = [checkpointed(block, copy_norm_inputs) for block in blocks] if enabled else []
    try:
        with norm_input_copies(blocks, copy_norm_inputs and not enabled and torch.is_grad_enabled()):
            yield
    finally:
        for block, original in zip(blocks, originals, strict=False):
            block.forward = original


def spatial_ratio(vae) -> int:
    """The VAE's spatial downscale: an int for Flux's VAE, (time, height, width) rules for the Wan VAE of Qwen-Image."""
    ratio = vae.downscale_ratio
    return int(ratio[-1]) if isinstance(ratio, (tuple, list)) else int(ratio)


class ComfyFlowPolicy:
    """A ComfyUI Flux MODEL (ModelPatcher), CLIP and VAE behind the `FlowPolicy` interface."""

    def __init__(self, model, clip, vae, *, lora_rank: int, lora_alpha: float, lora_targets: list[str],
                 seed: int = 0, gradient_checkpointing: bool = True):
        import comfy.model_management as mm

        self.clip, self.vae = clip, vae
        self.patcher = model.clone()  # the user's MODEL keeps no trace of the adapter
        self.base = self.patcher.model
        self.device = torch.device(self.patcher.load_device)
        self.dtype = self.base.manual_cast_dtype or self.base.get_dtype()
        self.gradient_checkpointing = gradient_checkpointing
        self.latent_channels = self.base.latent_format.latent_channels
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        unet_config = self.base.model_config.unet_config
        self.guidance_embed = bool(unet_config.get("guidance_embed", False))
        shapes = {k: v.shape for k, v in self.base.state_dict().items() if k.endswith(".weight")}
        generator = torch.Generator().manual_seed(seed)
        self.adapters: dict[str, FusedLoRA] = {}
        with torch.inference_mode(False):
            for key, parts in sorted(self._lora_layout(unet_config, shapes, lora_targets).items()):
                adapter = FusedLoRA(shapes[key], parts, lora_rank, lora_alpha, generator).to(self.device)
                self.patcher.add_weight_wrapper(key, adapter)
                self.adapters[key] = adapter
        self._mm = mm

    def _lora_layout(self, unet_config: dict, shapes: dict, targets: list[str]) -> dict[str, list]:
        """{ComfyUI weight key: [(diffusers module, row offset, rows)]}; other families: families.py."""
        return lora_layout(unet_config, shapes, targets)

    # ------------------------------------------------------------------------------------------------ placement

    def _ensure_loaded(self) -> None:
        """Full load through model management (evicting the scorer if it holds the room); then make the weights
        plain tensors: ComfyUI creates them under inference_mode, and autograd cannot save those for backward."""
        mm = self._mm
        if not any(m.model is self.patcher for m in mm.current_loaded_models):
            mm.load_models_gpu([self.patcher], force_full_load=True)
        with torch.inference_mode(False):
            for module in self.base.modules():
                for name, p in list(module._parameters.items()):
                    if p is not None and p.is_inference():
                        module._parameters[name] = torch.nn.Parameter(p.clone(), requires_grad=False)
                for name, b in list(module._buffers.items()):
                    if b is not None and b.is_inference():
                        module._buffers[name] = b.clone()

    # ------------------------------------------------------------------------------------------------ prompts

    def cached_encodings(self, prompts: Sequence[str], encode) -> list:
        """encode(prompt) of each prompt, through the policy's LRU cache (the last PROMPT_CACHE_SIZE prompts, and at
        least this call's)."""
        for prompt in dict.fromkeys(prompts):
            if prompt not in self._cache:
                self._cache[prompt] = encode(prompt)
            self._cache.move_to_end(prompt)
        rows = [self._cache[p] for p in prompts]
        while len(self._cache) > max(PROMPT_CACHE_SIZE, len(set(prompts))):
            self._cache.popitem(last=False)
        return rows

    @staticmethod
    def check_one_length(rows: list, family: str) -> None:
        """Families without a text mask: one GRPO group must share one text length (rows: (cond [L, D], ...))."""
        lengths = {r[0].shape[0] for r in rows}
        if len(lengths) > 1:
            raise ValueError(f"the prompts encode to different text lengths ({sorted(lengths)} tokens): {family} has "
                             "no text mask, so one GRPO group must share one length; shorten the longest prompts")

    def _encode_pooled(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.clip.encode_from_tokens(self.clip.tokenize(prompt), return_pooled=True, return_dict=True)
        return out["cond"][0].float().cpu(), out["pooled_output"][0].float().cpu()

    def encode_prompts(self, prompts: Sequence[str]) -> PromptEmbeds:
        rows = self.cached_encodings(prompts, self._encode_pooled)
        self.check_one_length(rows, "Flux")
        return PromptEmbeds(torch.stack([r[0] for r in rows]).to(self.device),
                            torch.stack([r[1] for r in rows]).to(self.device))  # fmt: skip

    # ------------------------------------------------------------------------------------------------ latents

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        ratio = spatial_ratio(self.vae)
        return 2 * (height // (ratio * 2)), 2 * (width // (ratio * 2))

    def sigmas(self, num_steps: int, height: int, width: int) -> torch.Tensor:
        import comfy.samplers

        sampling = self.patcher.get_model_object("model_sampling")
        return comfy.samplers.calculate_sigmas(sampling, "simple", num_steps).float().cpu()

    def initial_noise(self, generators: Sequence[torch.Generator], height: int, width: int) -> torch.Tensor:
        h, w = self.latent_size(height, width)
        noise = [torch.randn((self.latent_channels, h, w), generator=g, device=g.device) for g in generators]
        return torch.stack(noise).float().to(self.device)

    # ------------------------------------------------------------------------------------------------ model

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, embeds: PromptEmbeds, guidance: float) -> torch.Tensor:
        self._ensure_loaded()
        # inputs computed from inference-mode tensors (ComfyUI's CLIP output) are copied into normal tensors
        x, embeds = x.clone(), PromptEmbeds(embeds.prompt_embeds.clone(), embeds.pooled.clone())
        b = x.shape[0]
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=self.device).expand(b)
        timestep = self.patcher.get_model_object("model_sampling").timestep(sigma).float()
        kwargs = {"y": embeds.pooled.to(self.device, self.dtype)}
        if self.guidance_embed:
            kwargs["guidance"] = torch.full((b,), float(guidance), device=self.device, dtype=self.dtype)
        options = dict(self.patcher.model_options.get("transformer_options", {}))
        blocks = [*self.base.diffusion_model.double_blocks, *self.base.diffusion_model.single_blocks]
        with checkpointing(blocks, self.gradient_checkpointing and torch.is_grad_enabled()):
            out = self.base.diffusion_model(x.to(self.device, self.dtype), timestep,
                                            context=embeds.prompt_embeds.to(self.device, self.dtype),
                                            transformer_options=options, **kwargs)  # fmt: skip
        return out.float()  # Flux predicts the velocity (noise - x_0): ComfyUI's CONST sampling denoises x - sigma*v

    @contextlib.contextmanager
    def reference(self):
        for adapter in self.adapters.values():
            adapter.enabled = False
        try:
            yield
        finally:
            for adapter in self.adapters.values():
                adapter.enabled = True

    def named_trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        out = {}
        for adapter in self.adapters.values():
            for (module, _, _), a, b in zip(adapter.parts, adapter.lora_A, adapter.lora_B, strict=True):
                out[f"{module}.lora_A"] = a
                out[f"{module}.lora_B"] = b
        return out

    def lora_state_dict(self, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
        """Diffusers keys, scale folded into B: the same file the headless backend exports."""
        out = {}
        for adapter in self.adapters.values():
            for (module, _, _), a, b in zip(adapter.parts, adapter.lora_A, adapter.lora_B, strict=True):
                out[f"{PREFIX}{module}.lora_A.weight"] = a.detach().float().to(dtype).cpu().contiguous().clone()
                out[f"{PREFIX}{module}.lora_B.weight"] = (b.detach().float() * adapter.scale).to(dtype).cpu().clone()
        return out

    def load_lora_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Set the adapter from an exported (folded) state dict, as training.grpo.lora.load_lora_file does."""
        params = self.named_trainable_parameters()
        expected = {f"{PREFIX}{n[:-len('.lora_A')]}.lora_A.weight" for n in params if n.endswith(".lora_A")}
        expected |= {k.replace(".lora_A.", ".lora_B.") for k in expected}
        if set(state) != expected:
            raise ValueError(f"LoRA keys do not match this model's adapter (unexpected {sorted(set(state) - expected)[:3]}"
                             f", missing {sorted(expected - set(state))[:3]})")
        with torch.no_grad():
            for adapter in self.adapters.values():
                for (module, _, _), a, b in zip(adapter.parts, adapter.lora_A, adapter.lora_B, strict=True):
                    a.copy_(state[f"{PREFIX}{module}.lora_A.weight"])
                    b.copy_(state[f"{PREFIX}{module}.lora_B.weight"].float() / adapter.scale)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        raw = self.base.latent_format.process_out(latents.float().cpu())
        return self.vae.decode(raw).float().cpu().clamp(0, 1)
