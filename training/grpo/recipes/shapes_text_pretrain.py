"""The shapes generator's T5 text encoder, pretrained on the prompt language before flow matching, then frozen.

FLUX.1 conditions on a T5 that was pretrained on text and is frozen. The first shapes recipe instead trained its
small T5 from scratch together with the transformer, and it came out a bag of words: the transformer gives text
tokens no position (FLUX's text ids are all 0), and the T5 outputs of "a red circle to the left of a blue square"
and of its role-swapped twin are the same set of vectors to 0.03% (`shapes_order_probe`), so no transformer, and
no LoRA on it, can tell which object a relation is about.

This stage trains the T5 alone on the training prompts (never a held-out text) with two objectives:
- masked-token prediction, the BERT/T5 pretraining task: 15% of the tokens are replaced by <unk> and predicted
  from the output through the tied input embeddings;
- each output token predicts its own position (a linear probe over the T5 length, dropped afterwards), which puts
  word order, hence each word's role, into every token's output.
Both come from the text alone; nothing here sees a picture or a relation label.

    python -m training.grpo.recipes.shapes_text_pretrain --generator shapes --out runs/text_encoder [--steps 1000]
"""

from __future__ import annotations

from pathlib import Path

import torch

MASK_RATE = 0.15
UNK_ID = 2  # the word-level tokenizer's <unk>: the mask token
PAD_ID = 0


def text_losses(t5, position_head: torch.nn.Linear, ids: torch.Tensor, g: torch.Generator) -> dict[str, torch.Tensor]:
    """The two pretraining losses on a batch of token ids [B, L] (padded with PAD_ID)."""
    words = ids != PAD_ID
    masked = (torch.rand(ids.shape, generator=g) < MASK_RATE) & words
    inputs = torch.where(masked, torch.full_like(ids, UNK_ID), ids)
    hidden = t5(inputs)[0]  # [B, L, D]
    logits = (hidden * t5.config.d_model**-0.5) @ t5.shared.weight.T  # tied output embeddings, scaled as T5's head
    mlm = torch.nn.functional.cross_entropy(logits[masked], ids[masked]) if masked.any() else hidden.sum() * 0
    positions = torch.arange(ids.shape[1]).expand_as(ids)
    where = torch.nn.functional.cross_entropy(position_head(hidden[words]), positions[words])
    return {"mlm": mlm, "position": where}


def pretrain_text_encoder(out: Path, t5, ids: torch.Tensor, *, steps: int, batch: int = 128, lr: float = 1e-3,
                          seed: int = 0):
    """Train (or resume) `t5` under `out` on the token ids [N, L]; returns it frozen, in eval mode."""
    from .shapes_fit import fit

    position_head = torch.nn.Linear(t5.config.d_model, ids.shape[1])
    torch.manual_seed(seed)
    torch.nn.init.normal_(position_head.weight, std=0.02)
    torch.nn.init.zeros_(position_head.bias)
    params = {f"t5.{n}": p for n, p in t5.named_parameters()}
    params.update({f"position_head.{n}": p for n, p in position_head.named_parameters()})
    t5.train()

    def loss_at(step: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step * 64 + rank)
        index = torch.randint(len(ids), (batch // world,), generator=g)
        losses = text_losses(t5, position_head, ids[index], g)
        return losses["mlm"] + losses["position"]

    weights = fit(out, params, loss_at, steps=steps, lr=lr, warmup=100, decay_from=steps // 2, desc="text encoder",
                  checkpoint_every=250)  # fmt: skip
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name])
    return t5.eval().requires_grad_(False)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from diffusers import FluxPipeline
    from transformers import T5EncoderModel

    from ...common.atomic import atomic_dir, usual_permissions
    from ...dataset.prompts import plain_prompt
    from ..assets import resolve_generator
    from .shapes_data import PRETRAIN_SEED, heldout_prompts, training_scenes
    from .shapes_generator import TEXT_LENGTH

    parser = argparse.ArgumentParser(prog="python -m training.grpo.recipes.shapes_text_pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--generator", default="shapes", help="the pipeline whose T5 config and tokenizer to use")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--pool", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    source = FluxPipeline.from_pretrained(resolve_generator(args.generator), local_files_only=True)
    torch.manual_seed(args.seed)
    t5 = T5EncoderModel(source.text_encoder_2.config)  # from scratch: only the architecture is reused
    prompts = [plain_prompt(s) for s in training_scenes(args.pool, PRETRAIN_SEED, heldout_prompts())]
    ids = source.tokenizer_2(prompts, padding="max_length", max_length=TEXT_LENGTH, truncation=True,
                             return_tensors="pt").input_ids  # fmt: skip
    t5 = pretrain_text_encoder(args.out / "text_pretrain", t5, ids, steps=args.steps, seed=args.seed)
    with atomic_dir(args.out / "text_encoder_2") as tmp:
        t5.save_pretrained(tmp, safe_serialization=True)
        usual_permissions(tmp)
    print(f"text encoder: {args.out / 'text_encoder_2'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
