"""The report's numbers: per-variant score summaries and paired per-prompt win rates with 95% intervals.

Every variant drew image j of prompt i from the same noise, so variants are compared pair by pair: per prompt, the
win of B over A is the share of its images where B scored higher (a tie counts a half). The win rate is the mean of
those per-prompt wins, and its 95% interval is a percentile bootstrap over prompts (BOOTSTRAP resamples of the
prompts, with replacement, from a fixed seed): prompts are the unit that is sampled, the images of a prompt are
not independent of each other. The same holds for the mean score difference.
"""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
CONFIDENT_STD = 1.0  # a score's std at most one unit of reward (one logit of Bradley-Terry preference)
DECISIVE = 0.95  # the scorer's Gaussians give P(B > A) >= 0.95 (or <= 0.05)


def bootstrap_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (one per prompt)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = values[rng.integers(0, len(values), size=(BOOTSTRAP, len(values)))].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def per_prompt_wins(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[P] share of images where b beats a (ties a half), from per-image scores [P, K] of the same noise."""
    return ((b > a) + 0.5 * (b == a)).mean(axis=1)


def win_summary(wins: np.ndarray) -> dict:
    low, high = bootstrap_interval(wins)
    return {"win_rate": float(np.mean(wins)), "low": low, "high": high, "prompts": int(len(wins)),
            "interval": "95% percentile bootstrap over prompts"}  # fmt: skip


def variant_summary(mean: np.ndarray, std: np.ndarray | None, confident_std: float = CONFIDENT_STD) -> dict:
    """Mean and std of a variant's scores [P, K], and the share of prompts whose images all have a scorer std at
    most `confident_std` (None when the scorer gives no std, e.g. zero-shot)."""
    out = {"score_mean": float(mean.mean()), "score_std": float(mean.std()), "images": int(mean.size)}
    if std is not None and np.any(std > 0):
        out["confident_share"] = float(np.mean(np.all(std <= confident_std, axis=1)))
        out["scorer_std_mean"] = float(std.mean())
    else:
        out["confident_share"] = None
    return out


def pair_summary(a_mean: np.ndarray, b_mean: np.ndarray, a_std: np.ndarray | None, b_std: np.ndarray | None) -> dict:
    """B against A by the scorer: the win rate with its interval, the mean score difference with its interval, and
    (with stds) the share of image pairs where the scorer's Gaussians decide (P(B > A) >= 0.95 or <= 0.05)."""
    wins = per_prompt_wins(a_mean, b_mean)
    diff = (b_mean - a_mean).mean(axis=1)
    low, high = bootstrap_interval(diff)
    out = {**win_summary(wins), "mean_gain": float(diff.mean()), "gain_low": low, "gain_high": high}
    if a_std is not None and b_std is not None and np.any(a_std > 0):
        p_b = _normal_cdf((b_mean - a_mean) / np.sqrt(a_std**2 + b_std**2 + 1e-12))
        out["decisive_share"] = float(np.mean((p_b >= DECISIVE) | (p_b <= 1 - DECISIVE)))
    return out


def judge_summary(preference: np.ndarray) -> dict:
    """B against A by the two-order pairwise judge: `preference` [P, K] is its averaged preference for B over both
    orders (0.5 = no preference); B wins an image pair when it is above 0.5."""
    wins = ((preference > 0.5) + 0.5 * (preference == 0.5)).mean(axis=1)
    return {**win_summary(wins), "mean_preference": float(preference.mean())}


def grouped(keys: list[list]) -> dict:
    """{key: indices of the prompts that have it}, for per-relation and per-count rows (a prompt may have several)."""
    out: dict = {}
    for i, prompt_keys in enumerate(keys):
        for key in prompt_keys:
            out.setdefault(key, []).append(i)
    return {k: np.asarray(v) for k, v in out.items()}


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(np.asarray(z, dtype=np.float64) / math.sqrt(2.0)))
