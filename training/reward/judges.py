"""The baselines of Table 1, run on a plain Qwen2.5-VL folder (no training):

- pointwise zero-shot: each image alone, "Does this image show <prompt>? Yes/No"; score log P(Yes) - log P(No)
  (the scorer's zero-shot mode); margin = score(chosen) - score(rejected).
- pairwise judge: both images in one chat, "Is the first image more faithful ... than the second? Yes/No",
  asked in both orders (chosen first, then rejected first). With p1 = P(Yes | chosen first) and
  p2 = P(Yes | rejected first), both normalised over {Yes, No}, the averaged preference for the chosen image is
  (p1 + (1 - p2)) / 2: a judge that always answers Yes (order bias) gets exactly 1/2, a tie. This is the paper's
  protocol for its GPT-5 and Gemini rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .config import DEFAULT_SYSTEM
from .evaluate import PairScores, chunks
from .models.model import SpatialScoreModel
from .train.pairs import Pair, load_pair_images

PAIRWISE_QUESTION = (
    "Is the first image more faithful than the second image to the spatial relations described in the prompt? "
    "Answer Yes or No."
)
_SLOT = "\x00PAIRWISE_PROMPT\x00"


class PairwiseJudge:
    """Two images in one chat with a Qwen2.5-VL in zero-shot mode (load_model on a base folder)."""

    def __init__(self, model: SpatialScoreModel, batch_size: int = 4, system: str = DEFAULT_SYSTEM,
                 question: str = PAIRWISE_QUESTION):
        if model.mode != "zero-shot":
            raise ValueError("the pairwise judge needs a plain Qwen2.5-VL (zero-shot mode), not a trained scorer")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model.eval()
        self.batch_size = batch_size
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": [
                {"type": "text", "text": f"Prompt: {_SLOT}\nFirst image: "}, {"type": "image"},
                {"type": "text", "text": "\nSecond image: "}, {"type": "image"},
                {"type": "text", "text": "\n" + question},
            ]},
        ]
        self.rendered = model.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if self.rendered.count(_SLOT) != 1 or self.rendered.count(model.processor.image_token) != 2:
            raise ValueError("the chat template must render the prompt once and both images")

    @torch.inference_mode()
    def prefer_first(self, first: Sequence, second: Sequence, prompts: Sequence[str]) -> torch.Tensor:
        """log P(Yes) - log P(No) that the first image is the more faithful one, [N] float32 on CPU."""
        out = []
        cfg = self.model.config
        size = {"shortest_edge": cfg.min_pixels, "longest_edge": cfg.max_pixels}
        for idx in chunks(list(range(len(prompts))), self.batch_size):
            texts = [self.rendered.replace(_SLOT, prompts[i]) for i in idx]
            images = [im for i in idx for im in (first[i], second[i])]
            batch = self.model.processor(text=texts, images=images, return_tensors="pt", padding=True,
                                         padding_side="right", size=size)
            logit, _ = self.model.from_hidden(self.model.final_hidden(dict(batch)))
            out.append(logit.float().cpu())
        return torch.cat(out)

    def pair_scores(self, pairs: Sequence[Pair], chunk_pairs: int = 16, progress=None) -> PairScores:
        forward, backward = [], []
        for batch_pairs in chunks(pairs, chunk_pairs):
            images = [load_pair_images(p) for p in batch_pairs]
            chosen, rejected = [c for c, _ in images], [r for _, r in images]
            prompts = [p.prompt for p in batch_pairs]
            forward.append(self.prefer_first(chosen, rejected, prompts))
            backward.append(self.prefer_first(rejected, chosen, prompts))
            if progress is not None:
                progress(len(batch_pairs))
        p1 = torch.sigmoid(torch.cat(forward).double()).numpy()  # P(Yes) / (P(Yes) + P(No)), chosen first
        p2 = torch.sigmoid(torch.cat(backward).double()).numpy()  # same, rejected first
        return PairScores(margin=pairwise_margin(p1, p2), extra={"p_yes_chosen_first": p1, "p_yes_rejected_first": p2})


def pairwise_margin(p_yes_chosen_first: np.ndarray, p_yes_rejected_first: np.ndarray) -> np.ndarray:
    """The averaged two-order preference for the chosen image, minus 1/2 (exposed for tests and other judges)."""
    return 0.5 * (np.asarray(p_yes_chosen_first) + 1.0 - np.asarray(p_yes_rejected_first)) - 0.5
