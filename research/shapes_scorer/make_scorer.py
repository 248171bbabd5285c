"""Turn a yes/no-pretrained tiny base into an initial SpatialScore (LoRA, the 7B's path) and evaluate it.

The scorer's chat is the pretraining chat (image first, then the prompt) with the reward token where the
pretraining query token "Answer" was: the reward token's trainable embedding row starts as "Answer"'s row and
the linear head starts as the LM head's Yes-minus-No direction, so before any reward training the scorer's mean
is the base's log-odds that every relation holds. `python -m training.reward train --init-from` continues it
with the Bradley-Terry loss (only the LoRA adapters, that row and the head train).

    python research/shapes_scorer/make_scorer.py --base BASE --out SCORER [--rank 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from yesno_data import IMAGE_FIRST_TEMPLATE  # noqa: E402

from training.reward.config import HeadConfig, LoraSettings, ScorerConfig  # noqa: E402
from training.reward.loading import create_model, save_model  # noqa: E402

QUERY = "Answer"


def make_scorer(base: Path, out: Path, rank: int = 8, pixels: int = 112, head_scale: float = 1.0,
                base_ref: str | None = None) -> Path:
    px = pixels * pixels
    config = ScorerConfig(weights="lora", lora=LoraSettings(rank=rank, alpha=2 * rank, dropout=0.0),
                          head=HeadConfig(hidden_size=0), template=IMAGE_FIRST_TEMPLATE,
                          min_pixels=px, max_pixels=px)
    model = create_model(base, config, seed=0)
    tok = model.processor.tokenizer
    query_id, yes_id, no_id = (tok.encode(w)[0] for w in (QUERY, "Yes", "No"))
    vlm = model.vlm.get_base_model()
    with torch.no_grad():
        emb = vlm.get_input_embeddings()
        row = emb.token_adapter.base_layer.weight[query_id].clone()
        emb.token_adapter.trainable_tokens_delta["default"][0].copy_(row)
        lm = vlm.get_output_embeddings().weight
        model.head.out.weight.zero_()
        model.head.out.weight[0].copy_((lm[yes_id] - lm[no_id]) * head_scale)
        model.head.out.bias.zero_()
    if base_ref is not None:
        model.config.base_model = base_ref
    return save_model(model, out)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--pixels", type=int, default=112)
    ap.add_argument("--base-ref", default=None, help="base_model as written in spatialscore.json")
    args = ap.parse_args(argv)
    print(make_scorer(Path(args.base), Path(args.out), args.rank, args.pixels, base_ref=args.base_ref))


if __name__ == "__main__":
    main()
