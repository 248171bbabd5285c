"""Which ComfyUI MODELs the GRPO node trains, and the `FlowPolicy` of each (one module a family beyond Flux).

A family is trainable when ComfyUI 0.3.64 samples it as a rectified flow (CONST model sampling: x_sigma = sigma *
noise + (1 - sigma) * x_0, the model predicting noise - x_0, as the SDE of training/grpo/sde.py assumes) and the
LoRA it exports in diffusers keys is one ComfyUI's own LoRA loader maps back onto that model (comfy/lora.py,
`model_lora_keys_unet`). Any other MODEL is refused with one line naming these families. A family only adds the
model's forward, its conditioning and its LoRA key layout: the SDE, advantages, loss and export are training/grpo's.

- Flux (`model_base.Flux`: FLUX.1 dev/schnell and compatible): policy.ComfyFlowPolicy.
- Qwen-Image (`model_base.QwenImage`): family_qwen_image.ComfyQwenImagePolicy (the diffusers module names kept,
  true CFG rescaled as QwenImagePipeline).
- SD3 / SD3.5 (`model_base.SD3`): family_sd3.ComfySD3Policy (fused-qkv MMDiT, pooled CLIP vector, plain true CFG).
- Chroma (`model_base.Chroma`): family_chroma.ComfyChromaPolicy (Flux's blocks and key layout, no pooled vector,
  modulations from its distilled guidance approximator, plain true CFG). Chroma Radiance (pixel space) is refused.
"""

from __future__ import annotations

from ..logic.training_import import import_training
from .family_chroma import ComfyChromaPolicy
from .family_qwen_image import ComfyQwenImagePolicy
from .family_sd3 import SD3_LORA_TARGETS, ComfySD3Policy
from .policy import ComfyFlowPolicy, spatial_ratio  # noqa: F401 - spatial_ratio: for the node

import_training("grpo")
from training.grpo.config import FLUX_LORA_TARGETS  # noqa: E402
from training.grpo.qwen_image_policy import QWEN_IMAGE_LORA_TARGETS  # noqa: E402

# model_base class name (exactly: a subclass may change the latent space, as Chroma Radiance's pixels) -> family
FAMILIES = {"Flux": "Flux", "FluxInpaint": "Flux", "FluxSchnell": "Flux", "QwenImage": "Qwen-Image", "SD3": "SD3.5",
            "Chroma": "Chroma"}  # fmt: skip
SUPPORTED = "Flux (FLUX.1 dev / schnell and compatible), Qwen-Image, SD3.5 (and SD3) and Chroma"


class UnsupportedModel(ValueError):
    """A MODEL the GRPO node cannot train; the message is one line naming the supported families."""


def family_of(model) -> str:
    """'Flux', 'Qwen-Image', 'SD3.5' or 'Chroma' for a ComfyUI MODEL (ModelPatcher); UnsupportedModel for any other."""
    name = type(getattr(model, "model", None)).__name__
    if name in FAMILIES:
        return FAMILIES[name]
    raise UnsupportedModel(f"GRPO cannot train this MODEL ({name}): it trains {SUPPORTED} diffusion models")


def default_lora_targets(family: str) -> list[str]:
    """Diffusers module names inside each block (Flow-GRPO's and diffusers trainers' choice); Chroma: Flux's."""
    return list({"Qwen-Image": QWEN_IMAGE_LORA_TARGETS, "SD3.5": SD3_LORA_TARGETS}.get(family, FLUX_LORA_TARGETS))


# the families without a guidance embedding: true CFG, two forwards a step, against the `negative` CONDITIONING
TRUE_CFG_POLICIES = {"Qwen-Image": ComfyQwenImagePolicy, "SD3.5": ComfySD3Policy, "Chroma": ComfyChromaPolicy}
TRUE_CFG = tuple(TRUE_CFG_POLICIES)


def comfy_policy(model, clip, vae, *, negative=None, **kwargs):
    """The ComfyUI policy of `model`'s family (kwargs: ComfyFlowPolicy's); `negative`: CONDITIONING for true CFG."""
    family = family_of(model)
    if family in TRUE_CFG_POLICIES:
        return TRUE_CFG_POLICIES[family](model, clip, vae, negative=negative, **kwargs)
    return ComfyFlowPolicy(model, clip, vae, **kwargs)
