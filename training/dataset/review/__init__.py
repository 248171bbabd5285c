"""Human review of preference pairs: a keyboard-driven page whose verdicts go to DIR/reviews.jsonl.

`store` is the append-only verdict file (also read by training and evaluation), `rows` the dataset as the page sees
it, `app` the HTTP logic shared by the stdlib server (`server`, the CLI) and ComfyUI's routes, `static/` the page.
"""

from .store import DECISIONS, REVIEWS, VERDICTS, ReviewError, VerdictStore, read_verdicts, review_counts

__all__ = ["DECISIONS", "REVIEWS", "VERDICTS", "ReviewError", "VerdictStore", "read_verdicts", "review_counts"]
