"""ComfyUI's own sampling machinery cut into segments, for the Best-of-N Sampler: a shrinking batch that sees x0.

A segment samples the living batch from step `start` to step `end` of the KSampler schedule with
`comfy.samplers.CFGGuider` (what KSampler and SamplerCustomAdvanced run), so it works with any model ComfyUI samples:
Flux and other flow models (CONST sampling), and the classic EPS/V ones, with the user's sampler, scheduler, CFG,
patches and LoRAs. It is KSamplerAdvanced's chaining: the first segment adds the noise, the next ones continue
from the returned latent without new noise (ComfyUI's noise_scaling / inverse_noise_scaling make the hand-over
exact up to float rounding). The sampler callback gives the denoised x0 of every step; the last one of a segment is
the preview the pruner scores.

With no pruning point there is one segment: exactly KSampler on a batch of N with this seed (tested). With pruning,
Euler and the other one-step samplers give every survivor the image it would have had in the full batch; multistep
samplers (dpmpp_2m...) restart their history at each pruning point, as chained KSamplerAdvanced nodes do, and
ancestral samplers draw their noise for the smaller batch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class ComfySegments:
    """The segment function of nodes.logic.bestofn_node over a ModelPatcher, its conditioning and sampler."""

    def __init__(self, model, positive, negative, cfg: float, sampler_name: str, scheduler: str, steps: int,
                 seed: int, on_step: Callable[[int], None] | None = None):
        import comfy.samplers

        if negative is None and abs(cfg - 1.0) > 1e-6:
            raise ValueError(f"negative: cfg {cfg:g} needs a negative conditioning; connect one, or set cfg to 1.0 "
                             "(Flux and other guidance-distilled models use cfg 1 and no negative)")
        self.model = model.clone()  # the counting wrapper goes on a clone: the user's MODEL is left as it was
        self.forwards = 0
        previous = self.model.model_options.get("model_function_wrapper")

        def counting(apply_model, args):
            self.forwards += int(args["input"].shape[0])  # rows through the model: cond and uncond both count
            if previous is not None:
                return previous(apply_model, args)
            return apply_model(args["input"], args["timestep"], **args["c"])

        self.model.set_model_unet_function_wrapper(counting)
        self.guider = comfy.samplers.CFGGuider(self.model)
        if negative is None:
            self.guider.inner_set_conds({"positive": positive})  # as BasicGuider
        else:
            self.guider.set_conds(positive, negative)
        self.guider.set_cfg(cfg)
        self.sampler = comfy.samplers.sampler_object(sampler_name)
        # KSampler's own schedule (denoise 1), including its penultimate-sigma rule for dpm_2 / uni_pc
        self.sigmas = comfy.samplers.KSampler(self.model, steps=steps, device="cpu", sampler=sampler_name,
                                              scheduler=scheduler, denoise=1.0).sigmas.cpu()  # fmt: skip
        self.steps, self.seed, self.on_step = steps, seed, on_step

    def empty_latent(self, n: int, height: int, width: int, downscale: int) -> torch.Tensor:
        import comfy.model_management as mm
        import comfy.sample

        channels = self.model.get_model_object("latent_format").latent_channels
        latent = torch.zeros([n, channels, height // downscale, width // downscale], device=mm.intermediate_device())
        return comfy.sample.fix_empty_latent_channels(self.model, latent)  # as KSampler: one frame for Qwen-Image

    def __call__(self, x: torch.Tensor, start: int, end: int, alive: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        import comfy.model_management as mm
        import comfy.sample
        import comfy.utils

        if start == 0:
            noise = comfy.sample.prepare_noise(x, self.seed)  # KSampler's noise for the whole batch of N
        else:
            noise = torch.zeros_like(x)  # KSamplerAdvanced's add_noise disabled: continue from x
        last = {}

        def callback(i, denoised, x_now, total):
            last["x0"] = denoised
            if self.on_step is not None:
                self.on_step(start + i + 1)  # the progress bar, which also raises on Cancel
            mm.throw_exception_if_processing_interrupted()

        out = self.guider.sample(noise, x, self.sampler, self.sigmas[start:end + 1].clone(), callback=callback,
                                 disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=self.seed)  # fmt: skip
        x0 = self.model.model.process_latent_out(last["x0"].float())  # the callback's x0 is in the model's space
        return out.to(mm.intermediate_device()), x0.to(mm.intermediate_device())


def vae_downscale(vae) -> int:
    """The VAE's spatial downscale factor, or an error for a VAE that is not an image VAE."""
    ratio = getattr(vae, "downscale_ratio", None)
    if isinstance(ratio, (tuple, list)) and len(ratio) == 3 and ratio[1] == ratio[2] and isinstance(ratio[1], int):
        ratio = ratio[1]  # (frames rule, h, w): the Wan VAE of Qwen-Image, which decodes one frame as an image
    if not isinstance(ratio, int):
        raise ValueError(f"vae: expected an image VAE with a whole downscale factor, got {ratio!r} (video and audio "
                         "VAEs are not supported)")
    return ratio


def decode_images(vae, samples: torch.Tensor) -> torch.Tensor:
    """VAEDecode: LATENT samples -> IMAGE [B,H,W,3] in 0..1."""
    images = vae.decode(samples)
    if images.ndim == 5:  # [B,T,H,W,C] from a video-capable VAE: the frames of each sample
        images = images.reshape(-1, *images.shape[-3:])
    return images.float().cpu()
