"""Edit regions: boxes [x0, y0, x1, y1] in 0..1 (x right, y down), their masks, and their overlap.

A region is a list of boxes (a move changes two places). The IoU of two regions is that of the union of their
boxes, measured on a fine raster, so one big box and two small ones over the same pixels agree.
"""

from __future__ import annotations

import math

import numpy as np
import torch

RASTER = 128


def box_problem(box) -> str | None:
    """Why `box` is not [x0, y0, x1, y1] with finite coordinates in 0..1, x0 <= x1 and y0 <= y1; None if it is.

    Why it matters: the masks clamp coordinates, so a NaN or a pixel coordinate would silently become the image
    edge and every IoU, coverage target and preview drawn from it would be wrong without a word.
    """
    if not (isinstance(box, (list, tuple)) and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        return "is not a box [x0, y0, x1, y1] of 4 numbers"
    if not all(math.isfinite(v) for v in box):
        return f"{list(box)} has NaN or infinite coordinates"
    if not all(0.0 <= v <= 1.0 for v in box):
        return f"{list(box)} has coordinates outside 0..1 (boxes are fractions of the image size)"
    if box[0] > box[2] or box[1] > box[3]:
        return f"{list(box)} has x0 > x1 or y0 > y1"
    return None


def region_problem(boxes) -> str | None:
    """Why a region (a list of boxes) is unusable, naming the first bad box; None if every box is fine."""
    if not isinstance(boxes, (list, tuple)):
        return "is not a list of boxes [x0, y0, x1, y1]"
    for i, box in enumerate(boxes):
        problem = box_problem(box)
        if problem is not None:
            return f"box {i} {problem}"
    return None


def region_mask(boxes, size: int = RASTER) -> np.ndarray:
    """[size, size] bool: the union of the boxes."""
    mask = np.zeros((size, size), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        c0, c1 = int(np.floor(max(0.0, x0) * size)), int(np.ceil(min(1.0, x1) * size))
        r0, r1 = int(np.floor(max(0.0, y0) * size)), int(np.ceil(min(1.0, y1) * size))
        mask[r0:r1, c0:c1] = True
    return mask


def region_iou(pred, true, size: int = RASTER) -> float:
    """IoU of two regions' unions; two empty regions agree fully (1.0)."""
    a, b = region_mask(pred, size), region_mask(true, size)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def cell_coverage(regions: list, grid: int, fine: int = 4) -> torch.Tensor:
    """[B, grid*grid] the fraction of each grid cell the region covers (soft targets of a change map)."""
    out = torch.zeros(len(regions), grid * grid)
    for i, boxes in enumerate(regions):
        m = region_mask(boxes, grid * fine).reshape(grid, fine, grid, fine).mean(axis=(1, 3))
        out[i] = torch.from_numpy(m.reshape(-1).astype(np.float32))
    return out


def boxes_from_map(prob: np.ndarray, threshold: float = 0.5, min_cells: int = 2) -> list[list[float]]:
    """Boxes of the 8-connected groups of cells above `threshold` in a [grid, grid] map (small specks dropped)."""
    grid = prob.shape[0]
    on = prob > threshold
    seen = np.zeros_like(on)
    boxes = []
    for r in range(grid):
        for c in range(grid):
            if not on[r, c] or seen[r, c]:
                continue
            stack, cells = [(r, c)], []
            seen[r, c] = True
            while stack:
                y, x = stack.pop()
                cells.append((y, x))
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < grid and 0 <= xx < grid and on[yy, xx] and not seen[yy, xx]:
                            seen[yy, xx] = True
                            stack.append((yy, xx))
            if len(cells) >= min_cells:
                ys, xs = zip(*cells, strict=True)
                boxes.append([min(xs) / grid, min(ys) / grid, (max(xs) + 1) / grid, (max(ys) + 1) / grid])
    return sorted(boxes)


def to_1000(boxes) -> list[list[int]]:
    """Boxes in the 0-1000 integer coordinates generative judges use."""
    return [[round(v * 1000) for v in b] for b in boxes]
