"""The shapes generator (a small FLUX.1 FluxPipeline folder) as ComfyUI's MODEL, CLIP and VAE.

ComfyUI's stock loaders cannot load a FLUX this small (docs in /work/shared/ENVIRONMENT.md: Flux detection
hard-codes FLUX.1's widths, the text-encoder loaders CLIP-L / T5-XXL shapes, the VAE 32-group norms and 4 levels), so
this builds the three with ComfyUI's own classes:

- MODEL: ComfyUI's Flux (`comfy.ldm.flux`), configured by `detect_unet_config` with the sizes read from the weights
  (and the RoPE axes from the folder's config), `supported_models.Flux`, `load_model_weights`, in a `ModelPatcher`.
  Its latent format carries the generator's own VAE scale/shift and 8 channels, and its sampling shift is 0 (an
  unshifted schedule: the generator was trained and is sampled with linspace(1, 1/n, n)). So ComfyUI's KSampler,
  LoRA loaders and any node that reads `model.latent_format` / `model_sampling` treat it as the generator it is.
- CLIP: a `comfy.sd.CLIP` whose text model runs the folder's own CLIP and T5 encoders with its word-level tokenizers,
  exactly as FluxPipeline.encode_prompt does (the tokens of ComfyUI's BPE / SentencePiece tokenizers would mean
  nothing to these encoders). CLIPTextEncode and the GRPO node call it like any Flux CLIP: cond [1, L, D] and
  pooled_output.
- VAE: a `comfy.sd.VAE` whose first-stage model decodes with the folder's AutoencoderKL. ComfyUI's own KL decoder
  cannot hold it: its GroupNorm has 32 groups, and this VAE has 8, 16 and 32 channels.

Nothing here is special-cased by the GRPO node: it sees a MODEL, a CLIP and a VAE.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from ..logic.training_import import import_training

import_training("grpo")  # the pack's `training` in sys.modules (inside ComfyUI the pack is not on sys.path)
SHAPES_NAME = "shapes"


def resolve_shapes_folder(name_or_path: str) -> Path:
    """The shipped generator by name, or a FluxPipeline folder; else ValueError naming what was expected."""
    from training.grpo.shipped import AssetError, resolve_generator

    try:
        return resolve_generator(name_or_path)
    except AssetError as exc:
        raise ValueError(str(exc)) from None


# ------------------------------------------------------------------------------------------------ MODEL


def _latent_format(channels: int, scale: float, shift: float):
    import comfy.latent_formats

    class ShapesLatentFormat(comfy.latent_formats.LatentFormat):
        """The generator's VAE latent space: process_in((z - shift) * scale) as FluxPipeline does."""

        latent_channels = channels

        def __init__(self):
            self.scale_factor = scale
            self.shift_factor = shift
            self.latent_rgb_factors = None
            self.taesd_decoder_name = None

        def process_in(self, latent):
            return (latent - self.shift_factor) * self.scale_factor

        def process_out(self, latent):
            return (latent / self.scale_factor) + self.shift_factor

    return ShapesLatentFormat


def build_model(folder: Path, load_device, offload_device, dtype: torch.dtype = torch.float32,
                weight_dtype: torch.dtype | None = None):
    """ComfyUI's Flux with the folder's transformer weights, in a ModelPatcher.

    `weight_dtype` (torch.float8_e4m3fn / float8_e5m2; None: `dtype`) stores the weights as UNETLoader's weight_dtype
    does (`model_options["dtype"]`): ComfyUI's manual_cast operations then cast each weight to `dtype` where it is
    used (comfy/ops.py cast_bias_weight). The compute dtype stays `dtype` (the generator was trained in fp32), where
    UNETLoader would pick bf16/fp16 on a GPU (`unet_manual_cast`)."""
    import comfy.model_detection
    import comfy.model_patcher
    import comfy.supported_models
    from safetensors.torch import load_file

    diffusers_sd = load_file(str(folder / "transformer" / "diffusion_pytorch_model.safetensors"))
    config = json.loads((folder / "transformer" / "config.json").read_text(encoding="utf-8"))
    vae_config = json.loads((folder / "vae" / "config.json").read_text(encoding="utf-8"))
    sd = comfy.model_detection.convert_diffusers_mmdit(diffusers_sd, "")
    unet = comfy.model_detection.detect_unet_config(sd, "")
    hidden = sd["img_in.weight"].shape[0]
    unet.update(
        hidden_size=hidden,
        num_heads=config["num_attention_heads"],
        context_in_dim=sd["txt_in.weight"].shape[1],
        axes_dim=list(config["axes_dims_rope"]),
        out_channels=sd["final_layer.linear.weight"].shape[0] // 4,
        mlp_ratio=sd["double_blocks.0.img_mlp.0.weight"].shape[0] / hidden,
        guidance_embed="guidance_in.in_layer.weight" in sd,
    )
    model_config = comfy.supported_models.Flux(unet)
    model_config.latent_format = _latent_format(unet["in_channels"], vae_config["scaling_factor"],
                                                vae_config["shift_factor"])()  # an instance, as BASE.__init__ makes
    model_config.sampling_settings = {"shift": 0.0}  # flux_time_shift(0, 1, t) = t: the unshifted schedule
    if weight_dtype is None or weight_dtype == dtype:
        model_config.set_inference_dtype(dtype, None)
    else:
        model_config.set_inference_dtype(weight_dtype, dtype)
    model = model_config.get_model(sd, "", device=offload_device)
    model.load_model_weights(sd, "")
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


# ------------------------------------------------------------------------------------------------ CLIP


class ShapesTokenizer:
    """ComfyUI's tokenizer interface over the folder's two word-level tokenizers (token ids, no weights)."""

    def __init__(self, folder: Path, max_sequence_length: int):
        from transformers import AutoTokenizer

        self.clip = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
        self.t5 = AutoTokenizer.from_pretrained(str(folder / "tokenizer_2"), local_files_only=True)
        self.max_sequence_length = max_sequence_length

    def tokenize_with_weights(self, text: str, return_word_ids: bool = False, **kwargs) -> dict:
        clip = self.clip(text, padding="max_length", max_length=self.clip.model_max_length, truncation=True)
        t5 = self.t5(text, padding="max_length", max_length=self.max_sequence_length, truncation=True)
        return {"l": [[(i, 1.0) for i in clip.input_ids]], "t5xxl": [[(i, 1.0) for i in t5.input_ids]]}

    def untokenize(self, token_weight_pair):
        return token_weight_pair

    def state_dict(self) -> dict:
        return {}


class ShapesTextModel(torch.nn.Module):
    """The folder's CLIPTextModel and T5EncoderModel behind ComfyUI's text-model interface.

    encode_token_weights returns (T5 sequence [1, L, D], CLIP pooled [1, D_pooled]) per prompt, the two inputs
    FluxPipeline.encode_prompt gives the transformer (CLIP pooler output, T5 last hidden state, no mask).
    """

    def __init__(self, folder: Path, device="cpu", dtype=None, model_options=None):
        super().__init__()
        from transformers import CLIPTextModel, T5EncoderModel

        kwargs = {"local_files_only": True, "torch_dtype": dtype or torch.float32}
        self.clip_l = CLIPTextModel.from_pretrained(str(folder / "text_encoder"), **kwargs).eval().to(device)
        self.t5xxl = T5EncoderModel.from_pretrained(str(folder / "text_encoder_2"), **kwargs).eval().to(device)
        self.requires_grad_(False)
        self.dtypes = {dtype or torch.float32}

    def reset_clip_options(self) -> None:
        pass

    def set_clip_options(self, options: dict) -> None:
        pass

    def load_sd(self, sd):
        return self.load_state_dict(sd, strict=False)

    @torch.no_grad()
    def encode_token_weights(self, token_weight_pairs: dict):
        device = next(self.parameters()).device
        conds, pooled = [], []
        for clip_ids, t5_ids in zip(token_weight_pairs["l"], token_weight_pairs["t5xxl"], strict=True):
            clip_ids = torch.tensor([[t for t, _ in clip_ids]], device=device)
            t5_ids = torch.tensor([[t for t, _ in t5_ids]], device=device)
            pooled.append(self.clip_l(clip_ids, output_hidden_states=False).pooler_output)
            conds.append(self.t5xxl(t5_ids, output_hidden_states=False)[0])
        cond = torch.cat(conds, dim=1)  # ComfyUI concatenates a long prompt's chunks along the sequence
        return cond.float(), pooled[0].float()


def build_clip(folder: Path, max_sequence_length: int, dtype: torch.dtype = torch.float32):
    import comfy.sd

    class Target:
        params = {}

        @staticmethod
        def clip(dtype=None, device="cpu", model_options=None):
            return ShapesTextModel(folder, device=device, dtype=dtype, model_options=model_options)

        @staticmethod
        def tokenizer(embedding_directory=None, tokenizer_data=None):
            return ShapesTokenizer(folder, max_sequence_length)

    return comfy.sd.CLIP(Target, model_options={"dtype": dtype})


# ------------------------------------------------------------------------------------------------ VAE


class DiffusersVAEFirstStage(torch.nn.Module):
    """A diffusers AutoencoderKL behind ComfyUI's first-stage interface: decode(z) / encode(x) in -1..1 pixels."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)

    def decode(self, z, **kwargs):
        return self.vae.decode(z.to(self.vae.dtype), return_dict=False)[0]

    def encode(self, x):
        return self.vae.encode(x.to(self.vae.dtype)).latent_dist.mode()


def build_vae(folder: Path, dtype: torch.dtype = torch.float32):
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.sd
    from diffusers import AutoencoderKL

    diffusers_vae = AutoencoderKL.from_pretrained(str(folder / "vae"), local_files_only=True, torch_dtype=dtype)
    # ComfyUI's VAE class with a trivial first stage (a pixel-space converter), then the real one put in its place
    vae = comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)})
    vae.first_stage_model = DiffusersVAEFirstStage(diffusers_vae)
    factor = 2 ** (len(diffusers_vae.config.block_out_channels) - 1)
    vae.latent_channels = diffusers_vae.config.latent_channels
    vae.downscale_ratio = vae.upscale_ratio = factor
    vae.working_dtypes = [dtype]
    vae.vae_dtype = dtype
    vae.memory_used_decode = lambda shape, dt: 4096 * shape[2] * shape[3] * factor * factor * mm.dtype_size(dt)
    vae.memory_used_encode = lambda shape, dt: 4096 * shape[2] * shape[3] * mm.dtype_size(dt)
    vae.patcher = comfy.model_patcher.ModelPatcher(vae.first_stage_model, load_device=vae.device,
                                                   offload_device=mm.vae_offload_device())  # fmt: skip
    return vae


# ------------------------------------------------------------------------------------------------ all three


WEIGHT_DTYPES = {"default": None, "fp8_e4m3fn": torch.float8_e4m3fn, "fp8_e5m2": torch.float8_e5m2}  # UNETLoader's


def load_shapes_generator(name_or_path: str = SHAPES_NAME, dtype: torch.dtype = torch.float32,
                          weight_dtype: str = "default"):
    """(MODEL, CLIP, VAE) of a FluxPipeline folder, built with ComfyUI's classes (see the module docstring);
    `weight_dtype` one of WEIGHT_DTYPES stores the MODEL's weights in fp8 (the text encoders and VAE stay `dtype`)."""
    import comfy.model_management as mm

    from training.grpo.shapes_generator import read_sampling

    folder = resolve_shapes_folder(name_or_path)
    declared = read_sampling(folder)
    length = declared.max_sequence_length if declared and declared.max_sequence_length else 512
    if weight_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype must be one of {list(WEIGHT_DTYPES)}, got {weight_dtype!r}")
    model = build_model(folder, mm.get_torch_device(), mm.unet_offload_device(), dtype, WEIGHT_DTYPES[weight_dtype])
    clip = build_clip(folder, length, dtype)
    vae = build_vae(folder, dtype)
    logging.info("SpatialScore: shapes generator loaded from %s (T5 length %d)", folder, length)
    return model, clip, vae
