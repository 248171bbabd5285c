"""`FlowPolicy` on a diffusers `FluxPipeline` from a local folder (FLUX.1-dev, or the tiny test Flux).

What makes it fit one GPU: text encoders stay on the CPU and visit the device only to encode prompts not seen
before (their embeddings are cached); the base weights are bf16 and frozen, only the LoRA trains (fp32); gradient
checkpointing in the transformer blocks; VAE decoding in slices. Guidance-distilled Flux takes guidance as an
embedding, so one forward per step.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from .lora import attach_lora, export_state_dict, load_lora_file
from .policy import PromptEmbeds
from .weight_storage import store_weights

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PROMPT_CACHE_SIZE = 256  # distinct prompts kept on the CPU (FLUX.1-dev: ~2 MB each at 512 T5 tokens in bf16)


class FluxPolicy:
    """A FluxPipeline's transformer with a trainable LoRA, behind the `FlowPolicy` interface."""

    PIPELINE = "FluxPipeline"  # the diffusers class from_folder loads

    def __init__(self, pipeline, device: torch.device | str, *, lora_rank: int, lora_alpha: float,
                 lora_targets: list[str], seed: int = 0, gradient_checkpointing: bool = True,
                 offload_text_encoders: bool = True, vae_batch_size: int = 4, max_sequence_length: int = 512,
                 weight_dtype: str = "default", offload_transformer: bool = False):
        self.pipeline = pipeline
        self.device = torch.device(device)
        self.transformer = pipeline.transformer
        self.dtype = self.transformer.dtype
        self.vae_batch_size = vae_batch_size
        self.max_sequence_length = max_sequence_length
        self.offload_text_encoders = offload_text_encoders
        self.offload_transformer = offload_transformer
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        encoder_device = "cpu" if offload_text_encoders else self.device
        for encoder in self.text_encoders(pipeline):
            encoder.requires_grad_(False).eval().to(encoder_device)
        pipeline.vae.requires_grad_(False).eval().to(self.device)
        self.transformer.to(self.device)
        self.lora_modules = attach_lora(self.transformer, lora_rank, lora_alpha, lora_targets, seed)
        # fp8 storage of the frozen block weights, cast to self.dtype layer by layer (weight_storage.py says how)
        self.fp8_parameters = store_weights(self.transformer, weight_dtype, self.dtype)
        self.transformer.eval()  # no dropout anywhere: sampling and training see the same function
        if gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self.vae_scale_factor = self.vae_scale(pipeline)
        self.latent_channels = self.transformer.config.in_channels // 4

    @staticmethod
    def text_encoders(pipeline) -> tuple:
        return (pipeline.text_encoder, pipeline.text_encoder_2)

    @staticmethod
    def vae_scale(pipeline) -> int:
        return 2 ** (len(pipeline.vae.config.block_out_channels) - 1)

    @classmethod
    def from_folder(cls, path: str | os.PathLike, device: torch.device | str, dtype: str = "bfloat16",
                    **kwargs) -> FluxPolicy:
        """Load the pipeline (cls.PIPELINE) from a local folder only (never a hub) and wrap it."""
        import diffusers

        pipeline = getattr(diffusers, cls.PIPELINE).from_pretrained(str(path), torch_dtype=DTYPES[dtype],
                                                                    local_files_only=True)
        pipeline.set_progress_bar_config(disable=True)
        return cls(pipeline, device, **kwargs)

    # ------------------------------------------------------------------------------------------------ prompts

    @torch.no_grad()
    def encode_prompts(self, prompts: Sequence[str]) -> PromptEmbeds:
        new = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        if new:
            encoders = (self.pipeline.text_encoder, self.pipeline.text_encoder_2)
            # the transformer (with its LoRA) steps off while T5 visits: the two never share the card
            visiting = self.offload_transformer and self.offload_text_encoders
            if visiting:
                self.transformer.to("cpu")
            if self.offload_text_encoders:
                for encoder in encoders:
                    encoder.to(self.device)
            try:
                embeds, pooled, _ = self.pipeline.encode_prompt(
                    prompt=new, prompt_2=None, device=self.device, max_sequence_length=self.max_sequence_length
                )
            finally:
                if self.offload_text_encoders:
                    for encoder in encoders:
                        encoder.to("cpu")
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                if visiting:
                    self.transformer.to(self.device)
            for i, prompt in enumerate(new):
                self._cache[prompt] = (embeds[i].cpu(), pooled[i].cpu())
        rows = [self._cache[p] for p in prompts]
        for p in prompts:
            self._cache.move_to_end(p)
        while len(self._cache) > max(PROMPT_CACHE_SIZE, len(set(prompts))):
            self._cache.popitem(last=False)
        return PromptEmbeds(
            torch.stack([r[0] for r in rows]).to(self.device, self.dtype),
            torch.stack([r[1] for r in rows]).to(self.device, self.dtype),
        )

    def fit_sequence_length(self, prompts: Sequence[str], bucket: int = 64, cap: int = 512) -> int:
        """Set the T5 length to the smallest multiple of `bucket` that holds every prompt (at most `cap`).

        One length for the whole run, computed from all its prompts: a prompt's conditioning then never depends on
        which prompts share its batch, and the trained policy is the sampled one.
        """
        if prompts:
            longest = max(len(ids) for ids in self.pipeline.tokenizer_2(list(prompts)).input_ids)
            self.max_sequence_length = min(cap, bucket * -(-longest // bucket))
            self._cache.clear()
        return self.max_sequence_length

    # ------------------------------------------------------------------------------------------------ latents

    def latent_size(self, height: int, width: int) -> tuple[int, int]:
        """Latent h, w for an image size, as FluxPipeline rounds it (divisible by 2 for the 2x2 packing)."""
        return 2 * (height // (self.vae_scale_factor * 2)), 2 * (width // (self.vae_scale_factor * 2))

    def sigmas(self, num_steps: int, height: int, width: int) -> torch.Tensor:
        """FluxPipeline's schedule: linspace(1, 1/n, n), shifted for the image's token count, then a final 0."""
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        scheduler = copy.deepcopy(self.pipeline.scheduler)
        h, w = self.latent_size(height, width)
        kwargs = {}
        if scheduler.config.get("use_dynamic_shifting", False):
            kwargs["mu"] = calculate_shift(
                (h // 2) * (w // 2),
                scheduler.config.get("base_image_seq_len", 256),
                scheduler.config.get("max_image_seq_len", 4096),
                scheduler.config.get("base_shift", 0.5),
                scheduler.config.get("max_shift", 1.15),
            )
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 1.0 / num_steps, num_steps), device="cpu", **kwargs)
        return scheduler.sigmas.detach().float().cpu()

    def initial_noise(self, generators: Sequence[torch.Generator], height: int, width: int) -> torch.Tensor:
        h, w = self.latent_size(height, width)
        noise = [torch.randn((self.latent_channels, h, w), generator=g, device=g.device) for g in generators]
        return torch.stack(noise).float().to(self.device)

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, h, w] -> Flux's token sequence [B, h/2 * w/2, 4C] (each token a 2x2 latent patch)."""
        b, c, h, w = x.shape
        return x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)

    def unpack(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, d = tokens.shape
        c = d // 4
        return tokens.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)

    def _image_ids(self, h: int, w: int) -> torch.Tensor:
        ids = torch.zeros(h // 2, w // 2, 3)
        ids[..., 1] += torch.arange(h // 2)[:, None]
        ids[..., 2] += torch.arange(w // 2)[None, :]
        return ids.reshape(-1, 3).to(self.device, self.dtype)

    # ------------------------------------------------------------------------------------------------ model

    def velocity(self, x: torch.Tensor, sigma: torch.Tensor, embeds: PromptEmbeds, guidance: float) -> torch.Tensor:
        b, _, h, w = x.shape
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=self.device).expand(b)
        guidance_embed = None
        if self.transformer.config.guidance_embeds:
            guidance_embed = torch.full((b,), float(guidance), dtype=torch.float32, device=self.device)
        tokens = self.transformer(
            hidden_states=self.pack(x.to(self.device, self.dtype)),
            timestep=sigma.to(self.dtype),  # Flux's transformer takes sigma (the pipeline passes t / 1000)
            guidance=guidance_embed,
            pooled_projections=embeds.pooled,
            encoder_hidden_states=embeds.prompt_embeds,
            txt_ids=torch.zeros(embeds.prompt_embeds.shape[1], 3, device=self.device, dtype=self.dtype),
            img_ids=self._image_ids(h, w),
            return_dict=False,
        )[0]
        return self.unpack(tokens.float(), h, w)

    @contextlib.contextmanager
    def offloaded(self):
        """Context in which the transformer and its LoRA are off the device (the scorer's phase), with
        offload_transformer; otherwise nothing moves."""
        if not self.offload_transformer:
            yield
            return
        self.transformer.to("cpu")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        try:
            yield
        finally:
            self.transformer.to(self.device)

    @contextlib.contextmanager
    def reference(self):
        self.transformer.disable_adapters()
        try:
            yield
        finally:
            self.transformer.enable_adapters()

    def named_trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in self.transformer.named_parameters() if p.requires_grad}

    def lora_state_dict(self, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        return export_state_dict(self.transformer, dtype or torch.float32)

    def load_lora(self, path: str | os.PathLike) -> None:
        load_lora_file(self.transformer, path)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        vae = self.pipeline.vae
        images = []
        for start in range(0, latents.shape[0], self.vae_batch_size):
            chunk = latents[start:start + self.vae_batch_size].to(self.device, vae.dtype)
            chunk = chunk / vae.config.scaling_factor + vae.config.shift_factor
            pixels = vae.decode(chunk, return_dict=False)[0]
            images.append((pixels.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu())
        return torch.cat(images)
