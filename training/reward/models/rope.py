"""M-RoPE positions for the shared-prefix scoring path, computed for a whole batch at once.

transformers' `get_rope_index` walks every row in Python (about 2 ms a row); our rows all have one known shape,
[prefix text][image tokens][text after the image], so the three position sections follow in closed form:
text advances all sections by one a token; image tokens sit at (start, start + row, start + column) on the
merged grid, and the text after an image resumes at start + max(rows, columns). `test_rope.py` checks
the result against `get_rope_index` itself.
"""

from __future__ import annotations

import torch


def prefix_positions(prefix_mask: torch.Tensor) -> torch.Tensor:
    """[3, U, P] positions of left-padded text-only prefixes (pads get 1, as transformers leaves them)."""
    pos = prefix_mask.long().cumsum(-1) - 1
    pos = pos.masked_fill(prefix_mask == 0, 1)
    return pos.unsqueeze(0).expand(3, -1, -1)


def suffix_positions(prefix_lengths: torch.Tensor, suffix_mask: torch.Tensor, image_grid_thw: torch.Tensor,
                     spatial_merge_size: int) -> torch.Tensor:
    """[3, B, S] positions of right-padded suffixes that start with one image's tokens.

    prefix_lengths: [B] real tokens before the image; image_grid_thw: [B, 3] in patches (t must be 1).
    """
    if bool((image_grid_thw[:, 0] != 1).any()):
        raise ValueError("shared-prefix scoring takes still images (temporal grid 1)")
    device = suffix_mask.device
    rows = (image_grid_thw[:, 1] // spatial_merge_size).to(device)
    cols = (image_grid_thw[:, 2] // spatial_merge_size).to(device)
    n_image = rows * cols
    j = torch.arange(suffix_mask.shape[1], device=device).unsqueeze(0)  # [1, S]
    start = prefix_lengths.to(device).unsqueeze(1)  # [B, 1]
    in_image = j < n_image.unsqueeze(1)
    after = start + torch.maximum(rows, cols).unsqueeze(1) + (j - n_image.unsqueeze(1))
    t = torch.where(in_image, start, after)
    h = torch.where(in_image, start + j // cols.unsqueeze(1), after)
    w = torch.where(in_image, start + j % cols.unsqueeze(1), after)
    pos = torch.stack([t, h, w])
    return pos.masked_fill(suffix_mask.unsqueeze(0) == 0, 1)
