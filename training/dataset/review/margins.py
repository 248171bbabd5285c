"""`review --scorer NAME`: a scorer's margin (chosen - rejected) computed for each pair the reviewer opens.

Datasets built with `--verify-scorer` carry a margin in the manifest already; this is for the others. Margins are
computed one pair at a time, when the page asks (after the pair is on screen), and kept for the session; the
"doubtful" filter uses only the margins stored in the manifest (scoring every pair up front would take minutes).
"""

from __future__ import annotations

import threading


class ScorerMargins:
    def __init__(self, name: str, rows, load_scorer, device: str | None = None):
        """`load_scorer(name, device=..., batch_size=...)`: training.reward.load_scorer, handed down by the caller
        (the dataset stage does not import the reward's)."""
        self.name = name
        self.rows = rows
        self.scorer = load_scorer(name, device=device, batch_size=2)
        self._cache: dict[int, dict] = {}
        self._lock = threading.Lock()  # one forward at a time: request threads share the model

    def margin(self, i: int) -> dict:
        with self._lock:
            if i not in self._cache:
                self._cache[i] = self._compute(i)
            return self._cache[i]

    def _compute(self, i: int) -> dict:
        from ...common.images import ImageInputError, load_image_file

        row = self.rows.rows[i]
        paths = [self.rows.image_path(row, side) for side in ("chosen", "rejected")]
        if None in paths:
            return {"scorer": self.name, "error": "an image is missing"}
        try:
            images = [load_image_file(str(p)) for p in paths]
        except ImageInputError as exc:
            return {"scorer": self.name, "error": str(exc)}
        try:
            result = self.scorer.score(images, [row["prompt"], row["prompt"]])
        except (ImageInputError, ValueError) as exc:  # e.g. NonFiniteScoreError: the page shows the line, not a 500
            return {"scorer": self.name, "error": str(exc)}
        mean = [float(v) for v in result.mean.view(-1)]
        return {"scorer": self.name, "margin": mean[0] - mean[1], "chosen": mean[0], "rejected": mean[1]}
