"""Models at their published shapes on fake tensors (no storage), or on real tensors at tiny size for the check.

`build(fake)` runs a constructor with bf16 as the default dtype (".to(dtype)" cannot swap fake parameters) inside
a FakeTensorMode when `fake`; the mode allows real inputs, so token ids, image grids and noise stay real and
data-dependent code (image token positions, window indices) runs on real values. The processors and tokenizers
are the project's small in-code ones: their vocabulary does not change the cost, the embedding size does, and it is
the published one.
"""

from __future__ import annotations

import contextlib

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

_MODE: FakeTensorMode | None = None


def fake_mode() -> FakeTensorMode:
    global _MODE
    if _MODE is None:
        _MODE = FakeTensorMode(allow_non_fake_inputs=True)
    return _MODE


@contextlib.contextmanager
def building(fake: bool, dtype: torch.dtype | None = None):
    """Construct modules on fake tensors (when `fake`) with `dtype` as the default dtype."""
    previous, original_to = torch.get_default_dtype(), torch.nn.Module.to
    if dtype is not None:
        torch.set_default_dtype(dtype)
    if fake:
        torch.nn.Module.to = _identity_to_is_free
    try:
        with fake_mode() if fake else contextlib.nullcontext():
            yield
    finally:
        torch.set_default_dtype(previous)
        torch.nn.Module.to = original_to


_MODULE_TO = torch.nn.Module.to


@contextlib.contextmanager
def identity_to_is_free(active: bool = True):
    """Within: Module.to returns at once when nothing would change (the real code's .to(device) calls, e.g. the
    text encoders' visit to the GPU, are identities on this CPU and must not swap fake parameters)."""
    original = torch.nn.Module.to
    if active:
        torch.nn.Module.to = _identity_to_is_free
    try:
        yield
    finally:
        torch.nn.Module.to = original


def _identity_to_is_free(self, *args, **kwargs):
    """Module.to that returns at once when nothing would change. Module.to swaps every fake parameter for a new
    one (swap_tensors), which fails on fake tensors (a weak reference to them is held); peft calls .to with the
    base layer's device and dtype on every adapter it creates, which is the identity when the adapter is built in
    the base's dtype."""
    device, dtype, _, memory_format = torch._C._nn._parse_to(*args, **kwargs)
    tensors = [*self.parameters(), *self.buffers()]
    if memory_format is None and all((device is None or t.device == device)
                                     and (dtype is None or not t.is_floating_point() or t.dtype == dtype)
                                     for t in tensors):
        return self
    return _MODULE_TO(self, *args, **kwargs)


@contextlib.contextmanager
def fake_layerwise_casting(active: bool = True):
    """Within: diffusers' layerwise casting hooks (training/grpo/weight_storage.py: fp8 storage of the frozen weights)
    work on fake tensors. The hooks cast with Module.to, which cannot swap fake parameters; here the same casts are
    made by putting the cast tensor in the module's parameter slot for the forward and the stored one back after.
    Memory: the real hook frees the fp8 storage while the compute-dtype copy is live, this keeps both (one layer's
    fp8 weight more, at most 36 MiB in FLUX.1-dev); what autograd saves for backward is the same cast copy."""
    from diffusers.hooks.layerwise_casting import LayerwiseCastingHook

    saved = (LayerwiseCastingHook.initialize_hook, LayerwiseCastingHook.pre_forward, LayerwiseCastingHook.post_forward)

    def initialize_hook(self, module):
        for name, p in list(module._parameters.items()):
            if p is not None and p.is_floating_point():
                module._parameters[name] = torch.nn.Parameter(p.detach().to(self.storage_dtype), requires_grad=False)
        return module

    def pre_forward(self, module, *args, **kwargs):
        module._stored_parameters = dict(module._parameters)
        for name, p in module._stored_parameters.items():
            if p is not None and p.is_floating_point():
                module._parameters[name] = p.detach().to(self.compute_dtype)
        return args, kwargs

    def post_forward(self, module, output):
        module._parameters.update(module.__dict__.pop("_stored_parameters"))
        return output

    if active:
        LayerwiseCastingHook.initialize_hook = initialize_hook
        LayerwiseCastingHook.pre_forward = pre_forward
        LayerwiseCastingHook.post_forward = post_forward
    try:
        yield
    finally:
        (LayerwiseCastingHook.initialize_hook, LayerwiseCastingHook.pre_forward,
         LayerwiseCastingHook.post_forward) = saved


def is_fake(t: torch.Tensor) -> bool:
    from torch._subclasses.fake_tensor import FakeTensor

    return isinstance(t, FakeTensor)


def to_fake(module: torch.nn.Module) -> torch.nn.Module:
    """Replace a module's parameters and buffers by fake tensors of the same shapes and dtypes, in place."""
    mode, done = fake_mode(), {}  # done: tied weights stay one tensor
    for sub in module.modules():
        for name, p in list(sub._parameters.items()):
            if p is not None:
                if id(p) not in done:
                    done[id(p)] = torch.nn.Parameter(mode.from_tensor(p.detach()), requires_grad=p.requires_grad)
                sub._parameters[name] = done[id(p)]
        for name, b in list(sub._buffers.items()):
            if b is not None:
                sub._buffers[name] = done.setdefault(id(b), mode.from_tensor(b))
    return module


# ----------------------------------------------------------------------------------------------- Qwen2.5-VL

QWEN = {  # published text shapes (../shared/ENVIRONMENT.md); the vision tower is the same for 3B and 7B
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, out_hidden=3584),
    "3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
               num_key_value_heads=2, out_hidden=2048),
}
QWEN_VISION = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, patch_size=14,
                   spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31])
TINY_QWEN = dict(text_hidden=64, text_layers=2, heads=4, kv_heads=2, vision_hidden=32, vision_depth=2)


def qwen_config(shape: str, tokenizer):
    from transformers import Qwen2_5_VLConfig

    from training.reward.models.tiny import SPECIAL_TOKENS, tiny_qwen25vl_config

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    if shape == "tiny":
        return tiny_qwen25vl_config(len(tokenizer) + 8, ids, **TINY_QWEN)
    text = dict(QWEN[shape])
    out_hidden = text.pop("out_hidden")
    tie = shape == "3b"  # Qwen2.5-VL-3B ties its input and output embeddings, the 7B does not
    return Qwen2_5_VLConfig(
        text_config=dict(vocab_size=152064, rms_norm_eps=1e-6, max_position_embeddings=32768,
                         tie_word_embeddings=tie, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"],
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
                         **text),
        vision_config=dict(out_hidden_size=out_hidden, **QWEN_VISION),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=tie,
    )


def build_qwen(shape: str, fake: bool, px: int, dtype: torch.dtype = torch.bfloat16, seed: int = 0):
    """(Qwen2.5-VL, SpatialProcessor) at `shape` ("7b", "3b", "tiny"), images up to px x px, eval mode."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from training.reward.models.processor import SpatialProcessor, make_image_processor
    from training.reward.models.tiny import CHAT_TEMPLATE, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    config = qwen_config(shape, tokenizer)
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]), building(fake, dtype):
        torch.manual_seed(seed)
        vlm = Qwen2_5_VLForConditionalGeneration(config)
    vlm.eval()
    processor = SpatialProcessor(make_image_processor(56 * 56, px * px), tokenizer, chat_template=CHAT_TEMPLATE)
    return vlm, processor


# ----------------------------------------------------------------------------------------------- FLUX.1-dev

FLUX_DEV = dict(patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
                num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
                axes_dims_rope=(16, 56, 56))
FLUX_VAE = dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=16, norm_num_groups=32)
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, vocab_size=49408)
T5_XXL = dict(d_model=4096, d_ff=10240, num_layers=24, num_heads=64, d_kv=64, vocab_size=32128)


def build_flux_pipeline(shape: str, fake: bool, dtype: torch.dtype = torch.bfloat16, seed: int = 0):
    """A FluxPipeline: FLUX.1-dev's transformer, VAE, CLIP-L and T5-XXL encoder at their published shapes on fake
    tensors ("flux-dev"), or the project's tiny random pipeline ("tiny", real or fake)."""
    from diffusers import AutoencoderKL, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from training.common.tiny_flux import (
        build_tiny_clip_tokenizer,
        build_tiny_flux_pipeline,
        build_tiny_t5_tokenizer,
    )

    if shape == "tiny":
        with building(False, dtype):  # (its scheduler reads tensor values: built real, then made fake)
            pipe = build_tiny_flux_pipeline(seed)
        if fake:
            for module in (pipe.transformer, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
                to_fake(module)
        pipe.set_progress_bar_config(disable=True)
        return pipe
    clip_tok, t5_tok = build_tiny_clip_tokenizer(), build_tiny_t5_tokenizer()
    tiny = build_tiny_flux_pipeline(seed)  # for its scheduler only (FLUX.1-dev's: shift 3, dynamic shifting)
    with torch.random.fork_rng(devices=[]), building(fake, dtype):
        torch.manual_seed(seed)
        transformer = FluxTransformer2DModel(**FLUX_DEV)
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.3611, shift_factor=0.1159,
                            use_quant_conv=False, use_post_quant_conv=False, **FLUX_VAE)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            max_position_embeddings=77, projection_dim=768, hidden_act="quick_gelu",
            bos_token_id=clip_tok.bos_token_id, eos_token_id=clip_tok.eos_token_id,
            pad_token_id=clip_tok.pad_token_id, **CLIP_L))
        text_encoder_2 = T5EncoderModel(T5Config(
            feed_forward_proj="gated-gelu", is_encoder_decoder=False, dropout_rate=0.0,
            pad_token_id=t5_tok.pad_token_id, eos_token_id=t5_tok.eos_token_id, **T5_XXL))
    for module in (text_encoder, text_encoder_2, vae, transformer):
        module.eval()
    pipe = FluxPipeline(scheduler=tiny.scheduler, vae=vae, text_encoder=text_encoder, tokenizer=clip_tok,
                        text_encoder_2=text_encoder_2, tokenizer_2=t5_tok, transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe
