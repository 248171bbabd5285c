"""The ComfyUI Qwen-Image backend (nodes/comfy/families.py) against the diffusers one
(training/grpo/qwen_image_policy.py): ComfyUI's own Qwen-Image transformer, built by ComfyUI's classes from the tiny
pipeline's weights, with the same LoRA, conditioning and noise gives the same velocities (with and without true CFG),
CFG log-probs and LoRA gradients within 1e-4; the export is the diffusers export, and ComfyUI's LoRA loader applies
it to every adapted weight. A MODEL of another family is refused with one line naming the supported ones.

The MODEL is ComfyUI's QwenImage class with the tiny weights; the text encoder is not ComfyUI's (its Qwen2.5-VL-7B
config is fixed in comfy/text_encoders): a CLIP stand-in hands both backends the diffusers pipeline's encoding
(tests/nodes/tiny_qwen_image_comfy.py).
"""

from __future__ import annotations

import logging

import pytest
import torch

from .comfy_inprocess import import_comfy
from .tiny_qwen_image_comfy import PipelineClip, comfy_qwen_image_model

REASON = import_comfy()
pytestmark = [pytest.mark.skipif(bool(REASON), reason=REASON or "ComfyUI importable"), pytest.mark.slow,
              pytest.mark.real_parts]  # fmt: skip
PROMPTS = ["a red circle to the left of a blue square", "a cat under a big green tree"]
TOL = 1e-4
H = W = 64
CFG = 4.0


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    from nodes.comfy.families import ComfyQwenImagePolicy
    from training.common.tiny_qwen_image import save_tiny_qwen_image_pipeline
    from training.grpo.qwen_image_policy import QWEN_IMAGE_LORA_TARGETS, QwenImagePolicy

    folder = save_tiny_qwen_image_pipeline(tmp_path_factory.mktemp("tiny-qwen") / "qwen_image", seed=0)
    d = QwenImagePolicy.from_folder(folder, "cpu", dtype="float32", lora_rank=4, lora_alpha=8.0,
                                    lora_targets=QWEN_IMAGE_LORA_TARGETS, gradient_checkpointing=False)  # fmt: skip
    with torch.no_grad():  # a LoRA far from zero, so that the adapters' placement matters
        for p in d.named_trainable_parameters().values():
            p.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(p.numel()))
    model = comfy_qwen_image_model(_without_lora(d.transformer))
    c = ComfyQwenImagePolicy(model, PipelineClip(d.pipeline), None, lora_rank=4, lora_alpha=8.0,
                             lora_targets=QWEN_IMAGE_LORA_TARGETS)  # fmt: skip
    c.load_lora_state_dict(d.lora_state_dict())
    return d, c, model


def _without_lora(transformer):
    """The base transformer's weights under their diffusers names (peft's base_layer suffix removed)."""
    import copy

    base = copy.deepcopy(transformer)
    base.disable_adapters()
    state = {k.replace(".base_layer.", "."): v for k, v in base.state_dict().items() if "lora_" not in k}

    class Weights(torch.nn.Module):
        config = transformer.config

        def state_dict(self, *args, **kwargs):
            return state

    return Weights()


def test_same_velocities_with_and_without_cfg(backends):
    d, c, _ = backends
    x = torch.randn(3, 16, H // 8, W // 8, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.9, 0.5, 0.2])
    ed, ec = d.encode_prompts(PROMPTS).select([0, 1, 1]), c.encode_prompts(PROMPTS).select([0, 1, 1])
    torch.testing.assert_close(ec.prompt_embeds, ed.prompt_embeds)
    for guidance in (1.0, CFG):
        vd, vc = d.velocity(x, sigma, ed, guidance), c.velocity(x, sigma, ec, guidance)
        error = (vd - vc).abs().max().item()
        print(f"velocity, guidance {guidance}: max |comfy - diffusers| = {error:.2e} (scale {vd.abs().max():.2f})")
        assert error < TOL


def test_same_cfg_log_probs_and_lora_gradients(backends):
    from training.grpo.sampling import sample_generators, sample_trajectories, step_log_prob

    d, c, _ = backends
    sigmas = d.sigmas(4, H, W)
    ed, ec = d.encode_prompts(PROMPTS).select([0, 1]), c.encode_prompts(PROMPTS).select([0, 1])
    run = sample_trajectories(d, ed, sample_generators(0, 0, range(2)), sigmas, [1.2] * 4, guidance=CFG,
                              height=H, width=W)  # fmt: skip
    results = []
    for policy, embeds in ((d, ed), (c, ec)):
        for p in policy.named_trainable_parameters().values():
            p.grad = None
        with torch.enable_grad():
            log_prob, _, _ = step_log_prob(policy, run.latents[:, 1], run.latents[:, 2], sigmas[1].item(),
                                           sigmas[2].item(), 1.2, embeds, guidance=CFG)  # fmt: skip
            log_prob.sum().backward()
        # the last block's text MLP does not reach the image output: no gradient (diffusers) or a zero one
        grads = {n.replace(".default.weight", ""): p.grad if p.grad is not None else torch.zeros_like(p)
                 for n, p in policy.named_trainable_parameters().items()}
        results.append((log_prob.detach(), grads))
    (lp_d, g_d), (lp_c, g_c) = results
    print(f"CFG log-prob: max |comfy - diffusers| = {(lp_d - lp_c).abs().max():.2e}")
    torch.testing.assert_close(lp_c, lp_d, rtol=0, atol=TOL)
    assert set(g_d) == set(g_c) and len(g_d) == 2 * 2 * 12
    scale = max(g.abs().max().item() for g in g_d.values())
    worst = max((g_d[n] - g_c[n]).abs().max().item() for n in g_d) / scale
    print(f"LoRA gradients: max |comfy - diffusers| / max |grad| = {worst:.2e} (max |grad| {scale:.2e})")
    assert worst < TOL


def test_export_loads_through_comfyui_lora_loader(backends, caplog):
    import comfy.sd

    d, c, model = backends
    state = c.lora_state_dict()
    assert set(state) == set(d.lora_state_dict())
    with caplog.at_level(logging.WARNING):
        patched = comfy.sd.load_lora_for_models(model, None, state, 1.0, 0.0)[0]
    assert "lora key not loaded" not in caplog.text
    assert len(patched.patches) == 2 * 12  # every adapted weight of the 2 blocks


def test_other_families_are_refused_in_one_line():
    from nodes.comfy.families import UnsupportedModel, family_of

    class HiDream:  # a model_base class the node does not train
        pass

    class Patcher:
        model = HiDream()

    with pytest.raises(UnsupportedModel) as info:
        family_of(Patcher())
    message = str(info.value)
    assert "\n" not in message and "Flux" in message and "Qwen-Image" in message and "HiDream" in message
