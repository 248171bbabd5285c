"""Stage 2 of the shapes generator: flow matching of the FLUX transformer and its text encoders.

By default both text encoders train from scratch with the transformer (the first recipe). With `text_encoder_2`
(a T5 pretrained on the prompt language by shapes_text_pretrain.py) the T5 is frozen, as FLUX.1's is, and only the
transformer and CLIP train; `init` starts them from an existing generator folder instead of from scratch.

The data is a fixed pool of rendered scenes (none of whose prompt texts is held out) encoded once by the trained
autoencoder. Each step draws a batch, a logit-normal sigma per sample and Gaussian noise (all seeded by the step),
forms x_sigma = (1 - sigma) x_0 + sigma noise and regresses the velocity noise - x_0, the FLUX.1 objective. The
text goes through the pipeline's own tokenizers at the lengths FluxPipeline uses (CLIP 77, T5 TEXT_LENGTH), and
the shipped weights are the EMA.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from ...dataset.prompts import plain_prompt
from ..flux_policy import FluxPolicy
from ..shapes_generator import TEXT_LENGTH, GeneratorShape, build_pipeline
from .shapes_data import PRETRAIN_SEED, render_batch, training_scenes
from .shapes_fit import fit


@torch.no_grad()
def encode_pool(pipeline, scenes: list, batch: int = 256) -> torch.Tensor:
    """Normalised latents (x_0 of the flow) of the scenes' pictures, [N, C, h, w]."""
    vae, out = pipeline.vae, []
    for start in tqdm(range(0, len(scenes), batch), desc="encoding pool", dynamic_ncols=True, mininterval=5):
        mean = vae.encode(render_batch(scenes[start:start + batch])).latent_dist.mean
        out.append((mean - vae.config.shift_factor) * vae.config.scaling_factor)
    return torch.cat(out)


def tokenize(pipeline, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids exactly as FluxPipeline.encode_prompt makes them."""
    clip = pipeline.tokenizer(prompts, padding="max_length", max_length=pipeline.tokenizer.model_max_length,
                              truncation=True, return_tensors="pt").input_ids  # fmt: skip
    t5 = pipeline.tokenizer_2(prompts, padding="max_length", max_length=TEXT_LENGTH, truncation=True,
                              return_tensors="pt").input_ids  # fmt: skip
    return clip, t5


def pretrain(out: Path, vae, shape: GeneratorShape, heldout: list[str], *, steps: int, batch: int = 64,
             lr: float = 1e-3, pool: int = 40_000, seed: int = 0, ema_decay: float = 0.995, ema_start: int = 750,
             decay_from: int = 2000, text_encoder_2=None, init: Path | None = None, sigma_mean: float = 0.0):
    """Train (or resume) the generator under `out`; returns the FluxPipeline with the EMA weights.

    `sigma_mean` is the logit-normal's location (SD3's m): above 0 trains more at high noise, where the layout and
    which object goes where are decided."""
    from .shapes_fit import process_world

    rank, world = process_world()
    pipeline = build_pipeline(shape, seed=seed, vae=vae)
    if init is not None:
        from diffusers import FluxPipeline

        start = FluxPipeline.from_pretrained(init, local_files_only=True)
        pipeline.transformer.load_state_dict(start.transformer.state_dict())
        pipeline.text_encoder.load_state_dict(start.text_encoder.state_dict())
    frozen_t5 = text_encoder_2 is not None
    if frozen_t5:
        pipeline.text_encoder_2 = text_encoder_2.eval().requires_grad_(False)
    scenes = training_scenes(pool, PRETRAIN_SEED, heldout)[rank::world]  # each process encodes and draws its share
    prompts = [plain_prompt(s) for s in scenes]
    latents = encode_pool(pipeline, scenes)
    clip_ids, t5_ids = tokenize(pipeline, prompts)
    modules = {"transformer": pipeline.transformer, "text_encoder": pipeline.text_encoder}
    if not frozen_t5:
        modules["text_encoder_2"] = pipeline.text_encoder_2
    params = {f"{m}.{n}": p for m, module in modules.items() for n, p in module.named_parameters()}
    for module in modules.values():
        module.train()
    policy = FluxPolicy.__new__(FluxPolicy)  # only its packing helpers: the training forward is the policy's own
    policy.device, policy.dtype = torch.device("cpu"), torch.float32
    h, w = latents.shape[-2:]
    img_ids = policy._image_ids(h, w)
    txt_ids = torch.zeros(TEXT_LENGTH, 3)

    def loss_at(step: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step * 64 + rank)  # each process its share of the batch
        index = torch.randint(len(latents), (batch // world,), generator=g)
        x0 = latents[index]
        sigma = torch.sigmoid(torch.randn(len(index), generator=g) + sigma_mean)
        noise = torch.randn(x0.shape, generator=g)
        s = sigma.view(-1, 1, 1, 1)
        x = (1 - s) * x0 + s * noise
        pooled = pipeline.text_encoder(clip_ids[index], output_hidden_states=False).pooler_output
        with torch.set_grad_enabled(not frozen_t5):
            sequence = pipeline.text_encoder_2(t5_ids[index])[0]
        tokens = pipeline.transformer(hidden_states=policy.pack(x), timestep=sigma, pooled_projections=pooled,
                                      encoder_hidden_states=sequence, txt_ids=txt_ids, img_ids=img_ids,
                                      return_dict=False)[0]  # fmt: skip
        return torch.nn.functional.mse_loss(policy.unpack(tokens, h, w), noise - x0)

    weights = fit(out, params, loss_at, steps=steps, lr=lr, warmup=200, decay_from=decay_from, ema_decay=ema_decay,
                  ema_start=ema_start, desc="generator", checkpoint_every=250)  # fmt: skip
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name])
    for module in modules.values():
        module.eval().requires_grad_(False)
    return pipeline


def main(argv: list[str] | None = None) -> int:
    """One process of the pretraining stage (the recipe runs it under torchrun with 2 processes on 2 cores)."""
    import argparse
    import json

    from diffusers import AutoencoderKL

    from ...common.atomic import atomic_dir, usual_permissions
    from ..shapes_generator import SAMPLING_FILE, Sampling, sampling_record
    from .shapes_data import heldout_prompts

    parser = argparse.ArgumentParser(prog="python -m training.grpo.recipes.shapes_pretrain")
    parser.add_argument("--out", required=True, type=Path, help="the recipe's folder (holds autoencoder_model/)")
    parser.add_argument("--steps", type=int, default=2800)
    parser.add_argument("--batch", type=int, default=64, help="over all processes")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pool", type=int, default=30_000)
    parser.add_argument("--text-encoder", type=Path, help="a pretrained T5 folder (shapes_text_pretrain.py), frozen")
    parser.add_argument("--init-from", type=Path, help="a generator folder to start the transformer and CLIP from")
    parser.add_argument("--vae-from", type=Path, help="take the autoencoder from this generator folder instead")
    parser.add_argument("--ema-start", type=int, default=750)
    parser.add_argument("--decay-from", type=int, default=2000)
    parser.add_argument("--sigma-mean", type=float, default=0.0, help="location of the logit-normal noise levels")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    shape = GeneratorShape()
    vae_folder = args.vae_from / "vae" if args.vae_from else args.out / "autoencoder_model"
    vae = AutoencoderKL.from_pretrained(vae_folder, local_files_only=True).eval()
    t5 = None
    if args.text_encoder:
        from transformers import T5EncoderModel

        t5 = T5EncoderModel.from_pretrained(args.text_encoder, local_files_only=True)
    pipeline = pretrain(args.out / "pretrain", vae, shape, heldout_prompts(), steps=args.steps, batch=args.batch,
                        lr=args.lr, pool=args.pool, text_encoder_2=t5, init=args.init_from, ema_start=args.ema_start,
                        decay_from=args.decay_from, sigma_mean=args.sigma_mean)  # fmt: skip
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return 0
    with atomic_dir(args.out / "generator") as tmp:
        pipeline.save_pretrained(tmp, safe_serialization=True)
        (tmp / SAMPLING_FILE).write_text(json.dumps(sampling_record(Sampling(), shape), indent=1) + "\n")
        usual_permissions(tmp)
    print(f"generator: {args.out / 'generator'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
