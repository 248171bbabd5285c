"""Tiny SD3.5 and Chroma transformers, diffusers and ComfyUI with the same weights, for the tests of the ComfyUI family
backends (nodes/comfy/family_sd3.py, family_chroma.py) against a diffusers reference.

- MODEL: ComfyUI's own classes with the diffusers transformer's weights. SD3 goes through ComfyUI's stock diffusion
  model loader (`comfy.sd.load_diffusion_model_state_dict`: it converts the diffusers keys, and its MMDiT detection
  reads every size from the weights). Chroma's detection hard-codes the 8.9B model's widths, so its config is built
  from the diffusers config and its weights converted with ComfyUI's own Flux key map (the approximator by hand).
- CLIP: tiny_comfy_parts.FixedClip gives each prompt a fixed random encoding (seeded by the prompt), the same for
  both backends: the tests compare the transformers, their LoRA, CFG and log-probs, not text encoders.
- the diffusers reference: `DiffusersReference`, a FlowPolicy on the diffusers transformer with training/grpo's LoRA
  (peft, attach_lora / export_state_dict), velocities as StableDiffusion3Pipeline / ChromaPipeline compute them.
"""

from __future__ import annotations

import contextlib
import re

import torch

from nodes.comfy.family_sd3 import PooledCfgEmbeds, plain_cfg
from training.grpo.lora import attach_lora, export_state_dict
from training.grpo.qwen_image_policy import MaskedPromptEmbeds, padded

from .tiny_comfy_parts import FixedClip

SD3_TEXT, SD3_POOLED = 32, 24  # context width (CLIP-L/G + T5, 4096 in SD3.5) and pooled width (2048)
CHROMA_TEXT = 32  # T5 width (4096)


def tiny_sd3_transformer(seed: int = 0):
    """An SD3.5-medium-like MMDiT: RMS qk-norm, one dual-attention block. ComfyUI's MMDiT fixes the head at 64 and the
    head count at the block count (`depth`), hence 2 heads of 64 for 2 blocks."""
    from diffusers import SD3Transformer2DModel

    torch.manual_seed(seed)
    return SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=16, num_layers=2, attention_head_dim=64,
                                 num_attention_heads=2, joint_attention_dim=SD3_TEXT, caption_projection_dim=128,
                                 pooled_projection_dim=SD3_POOLED, out_channels=16, pos_embed_max_size=16,
                                 qk_norm="rms_norm", dual_attention_layers=(0,)).eval()  # fmt: skip


def comfy_sd3_model(transformer):
    """ComfyUI's SD3 MODEL loaded by its stock diffusion model loader from the diffusers weights."""
    import comfy.sd

    state = {k: v.detach().clone() for k, v in transformer.state_dict().items()}
    return comfy.sd.load_diffusion_model_state_dict(state, model_options={"dtype": torch.float32})


def tiny_chroma_transformer(seed: int = 0):
    """A narrow Chroma (width 32) with 28 double and 2 single blocks. Why so many: ComfyUI's Chroma always computes
    344 modulation vectors (3 a single block + 12 a double block + 2 final: FLUX.1's 19 + 38 blocks) and takes the
    final layer's from the last two, diffusers computes exactly as many as the blocks need; the two agree only when
    3 s + 12 d + 2 = 344. ComfyUI's approximator input is fixed at 64 (16 + 16 + 32) too."""
    from diffusers import ChromaTransformer2DModel

    torch.manual_seed(seed)
    model = ChromaTransformer2DModel(patch_size=1, in_channels=64, out_channels=64, num_layers=28, num_single_layers=2,
                                     attention_head_dim=16, num_attention_heads=2, joint_attention_dim=CHROMA_TEXT,
                                     axes_dims_rope=(4, 6, 6), approximator_num_channels=64,
                                     approximator_hidden_dim=48, approximator_layers=2).eval()  # fmt: skip
    with torch.no_grad():  # RMSNorm scales of 1 would hide a swapped norm; zero-init layers would hide their inputs
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or ".norms." in name or "norm_" in name:
                p.uniform_(0.5, 1.5)
    return model


def comfy_chroma_model(transformer):
    """ComfyUI's Chroma MODEL with `transformer`'s weights (diffusers keys converted with comfy.utils.flux_to_diffusers,
    the key map ComfyUI also loads diffusers Chroma LoRAs with)."""
    import comfy.model_patcher
    import comfy.supported_models
    import comfy.utils

    c = transformer.config
    hidden = c.num_attention_heads * c.attention_head_dim
    layers = transformer.distilled_guidance_layer
    unet = {"image_model": "chroma", "in_channels": c.in_channels, "out_channels": c.out_channels,
            "context_in_dim": c.joint_attention_dim, "hidden_size": hidden, "mlp_ratio": 4.0,
            "num_heads": c.num_attention_heads, "depth": c.num_layers, "depth_single_blocks": c.num_single_layers,
            "axes_dim": list(c.axes_dims_rope), "theta": 10000, "qkv_bias": True, "patch_size": 2,
            "in_dim": layers.in_proj.in_features, "out_dim": layers.out_proj.out_features,
            "hidden_dim": layers.in_proj.out_features, "n_layers": len(layers.layers)}  # fmt: skip
    state = {k: v.detach().clone() for k, v in transformer.state_dict().items()}
    converted = {}
    for key, target in comfy.utils.flux_to_diffusers(unet, output_prefix="").items():
        if key not in state:
            continue
        weight = state.pop(key)
        if isinstance(target, str):
            converted[target] = weight
            continue
        name, offset = target[0], target[1]
        if len(target) > 2:
            weight = target[2](weight)
        if offset is None:
            converted[name] = weight
            continue
        dim, start, size = offset
        full = converted.setdefault(name, weight.new_zeros(0, *weight.shape[1:]))
        if full.shape[dim] < start + size:
            full = torch.cat([full, weight.new_zeros(start + size - full.shape[dim], *weight.shape[1:])])
        full[start:start + size] = weight
        converted[name] = full
    for key in list(state):  # the approximator: diffusers' linear_1/linear_2 and RMSNorm weight; ComfyUI's names
        if key.startswith("distilled_guidance_layer."):
            name = key.replace(".linear_1.", ".in_layer.").replace(".linear_2.", ".out_layer.")
            converted[re.sub(r"\.norms\.(\d+)\.weight$", r".norms.\1.scale", name)] = state.pop(key)
    leftover = [k for k in state if not k.startswith("time_text_embed.")]  # a buffer (mod_proj), not weights
    assert not leftover, f"unconverted Chroma weights: {leftover}"
    config = comfy.supported_models.Chroma(unet)
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model(converted, "", device=torch.device("cpu"))
    missing, unexpected = model.diffusion_model.load_state_dict(converted, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


class DiffusersReference:
    """The FlowPolicy methods the tests call, on a diffusers SD3 or Chroma transformer with training/grpo's LoRA."""

    def __init__(self, transformer, clip: FixedClip, *, rank: int, alpha: float, targets: list[str],
                 negative_prompt: str = ""):
        self.transformer, self.clip, self.negative_prompt = transformer, clip, negative_prompt
        self.device = torch.device("cpu")
        self.chroma = type(transformer).__name__.startswith("Chroma")
        attach_lora(transformer, rank, alpha, targets, seed=0)
        transformer.eval()

    def encode_prompts(self, prompts):
        outs = [self.clip.encode_from_tokens(p) for p in [*prompts, self.negative_prompt]]
        if self.chroma:
            embeds, mask = padded([o["cond"][0] for o in outs[:-1]])
            negative, negative_mask = padded([outs[-1]["cond"][0]])
            return MaskedPromptEmbeds(embeds, mask, negative, negative_mask)
        conds, pooled = torch.cat([o["cond"] for o in outs[:-1]]), torch.cat([o["pooled_output"] for o in outs[:-1]])
        return PooledCfgEmbeds(conds, pooled, outs[-1]["cond"], outs[-1]["pooled_output"])

    def initial_noise(self, generators, height, width):
        channels = 16
        return torch.stack([torch.randn(channels, height // 8, width // 8, generator=g) for g in generators])

    def _sd3(self, x, sigma, context, pooled):
        b = x.shape[0]
        return self.transformer(hidden_states=x, encoder_hidden_states=context.expand(b, -1, -1),
                                pooled_projections=pooled.expand(b, -1), timestep=sigma * 1000,
                                return_dict=False)[0]  # fmt: skip

    def _chroma(self, x, sigma, context, mask):
        """ChromaPipeline's call: packed 2x2 tokens, zero text ids, the text mask as its attention mask."""
        from training.grpo.flux_policy import FluxPolicy

        b, _, h, w = x.shape
        context, mask = context.expand(b, -1, -1), mask.expand(b, -1)
        ids = torch.zeros(h // 2, w // 2, 3)
        ids[..., 1] += torch.arange(h // 2)[:, None]
        ids[..., 2] += torch.arange(w // 2)[None, :]
        attention = None
        if not bool(mask.all()):  # as ChromaPipeline._prepare_attention_mask: text mask, then every image token
            attention = torch.cat([mask, torch.ones(b, (h // 2) * (w // 2), dtype=torch.bool)], dim=1)
        tokens = self.transformer(hidden_states=FluxPolicy.pack(None, x), timestep=sigma, encoder_hidden_states=context,
                                  txt_ids=torch.zeros(context.shape[1], 3), img_ids=ids.reshape(-1, 3),
                                  attention_mask=attention, return_dict=False)[0]  # fmt: skip
        return FluxPolicy.unpack(None, tokens, h, w)

    def velocity(self, x, sigma, embeds, guidance):
        sigma = torch.as_tensor(sigma, dtype=torch.float32).expand(x.shape[0])
        forward = self._chroma if self.chroma else self._sd3
        second = embeds.mask if self.chroma else embeds.pooled
        prediction = forward(x, sigma, embeds.prompt_embeds, second)
        if guidance > 1:
            negative_second = embeds.negative_mask if self.chroma else embeds.negative_pooled
            prediction = plain_cfg(prediction, forward(x, sigma, embeds.negative_embeds, negative_second), guidance)
        return prediction.float()

    @contextlib.contextmanager
    def reference(self):
        self.transformer.disable_adapters()
        try:
            yield
        finally:
            self.transformer.enable_adapters()

    def named_trainable_parameters(self):
        return {n: p for n, p in self.transformer.named_parameters() if p.requires_grad}

    def lora_state_dict(self):
        return export_state_dict(self.transformer)
