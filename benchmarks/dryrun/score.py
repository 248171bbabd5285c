"""Dry run of scoring: `Scorer.score` on a SpatialScore (LoRA merged into the base, as loaded for scoring).

The scorer is what `training.reward.load_scorer` returns for a LoRA scorer folder: the base with the adapter
merged (`merge_and_unload`: the base's shapes exactly), the reward token, a Gaussian head in fp32, bf16 weights.
Images are real random pixels (their content does not change the cost); the whole of `Scorer.score` runs:
processor, shared-prefix KV cache, vision tower, decoder, head.
"""

from __future__ import annotations

import numpy as np

from .fake import build_qwen
from .measure import Meter

PROMPT = ("a red circle to the left of a blue square, and a green triangle above the blue square, and the blue "
          "square below a yellow circle")  # ~30 tokens: a paper-style multi-relation prompt


def random_images(n: int, px: int, seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (px, px, 3), dtype=np.uint8)) for _ in range(n)]


def build_scorer_model(shape: str, fake: bool, px: int, head_hidden: int = 1024):
    """A reward-mode SpatialScoreModel as loaded for scoring (merged LoRA), bf16 base, fp32 head."""
    from training.reward.config import HeadConfig, ScorerConfig
    from training.reward.models.head import RewardHead
    from training.reward.models.loading import add_reward_token
    from training.reward.models.model import SpatialScoreModel

    from .fake import building

    vlm, processor = build_qwen(shape, fake, px)
    config = ScorerConfig(weights="lora", head=HeadConfig(hidden_size=head_hidden), min_pixels=56 * 56,
                          max_pixels=px * px)
    with building(fake):
        add_reward_token(vlm, processor, config.reward_token)
        head = RewardHead(vlm.config.text_config.hidden_size, config.head)
    model = SpatialScoreModel(vlm, processor, config, mode="reward", head=head)
    return model.eval()


def run(shape: str, fake: bool = True, batch: int = 8, images: int | None = None, px: int = 512) -> Meter:
    """One `Scorer.score` call on `images` images (default: one batch) of one prompt."""
    from training.reward.scorer import Scorer

    model = build_scorer_model(shape, fake, px)
    scorer = Scorer(model, batch_size=batch)
    n = images or batch
    pictures = random_images(n, px)
    meter = Meter()
    with meter.phase("score", {"scorer": model}, note=f"{n} images {px}x{px}, batch {batch}"):
        result = scorer.score(pictures, PROMPT)
    meter.result = result
    return meter
