"""The Best-of-N Sampler node's driver without ComfyUI: segments end at the pruning points, the batch shrinks to the
survivors, who continue from where they were; the report is training.bestofn's format; bad settings name the input.

A fake segment sampler stands in for ComfyUI's: every row of the latent carries its candidate id and the number of
steps it has been sampled, so the test sees which rows were sampled how far, and each candidate's x0 score after
step s is a known table QUALITY[c][s - 1].
"""

from __future__ import annotations

import json

import pytest
import torch

from nodes.logic.bestofn_node import BestOfNSettings, check_settings, pruned_best_of_n
from training.bestofn.schedule import DEFAULT_SCHEDULE, forwards

STEPS = 6
# x0 score of candidate c after step s (index s - 1); the last column is the final image's score
QUALITY = torch.tensor([
    [0.1, 0.2, 0.3, 0.3, 0.3, 0.30],
    [0.9, 0.8, 0.7, 0.6, 0.5, 0.40],
    [0.5, 0.6, 0.9, 0.9, 0.9, 0.95],
    [0.2, 0.1, 0.1, 0.1, 0.1, 0.10],
    [0.8, 0.9, 0.8, 0.8, 0.8, 0.80],
    [0.3, 0.7, 0.2, 0.2, 0.2, 0.20],
])  # fmt: skip
N = QUALITY.shape[0]


class FakeSegments:
    def __init__(self):
        self.calls = []  # (start, end, alive, candidate ids read from x)
        self.forwards = 0

    def __call__(self, x, start, end, alive):
        ids = [int(v) for v in x[:, 0, 0, 0].tolist()] if start else list(range(x.shape[0]))
        if start:
            assert x[:, 1, 0, 0].tolist() == [start] * x.shape[0]  # survivors continue from where they stopped
        self.calls.append((start, end, list(alive), ids))
        self.forwards += x.shape[0] * (end - start)
        out = torch.zeros_like(x)
        out[:, 0, 0, 0] = torch.tensor(ids, dtype=out.dtype)
        out[:, 1, 0, 0] = end
        return out, out.clone()  # x0 carries (candidate, step) as well


def decode(latent):
    ids, step = latent[:, 0, 0, 0].long(), latent[:, 1, 0, 0].long()
    images = torch.zeros(latent.shape[0], 4, 4, 3)
    images[..., 0] = QUALITY[ids, step - 1].view(-1, 1, 1)
    images[..., 1] = ids.float().view(-1, 1, 1) / 100
    return images


def score(images):
    return images[:, 0, 0, 0]


def run(n=N, keep=1, schedule="3@0.34,2@0.5"):
    segments = FakeSegments()
    settings = BestOfNSettings(n, keep, schedule, STEPS)
    result = pruned_best_of_n(settings, torch.zeros(n, 2, 2, 2), segments, decode, score, "a prompt",
                              forward_count=lambda: segments.forwards)  # fmt: skip
    return result, segments


def test_segments_end_at_the_pruning_points_and_only_survivors_continue():
    result, segments = run(keep=2)
    assert [(s, e) for s, e, _, _ in segments.calls] == [(0, 2), (2, 3), (3, 6)]
    # after step 2 the best three x0 scores are candidates 4 (0.9), 1 (0.8), 5 (0.7); after step 3: 4 and 1
    assert segments.calls[1][2] == segments.calls[1][3] == [1, 4, 5]
    assert segments.calls[2][2] == segments.calls[2][3] == [1, 4]
    assert result.candidates == [4, 1] and result.scores == pytest.approx([0.8, 0.4])
    assert result.images[:, 0, 0, 1].mul(100).round().tolist() == [4, 1]  # the images are those candidates'
    assert result.latents[:, 0, 0, 0].tolist() == [4, 1] and result.latents[:, 1, 0, 0].tolist() == [STEPS, STEPS]
    # the final candidate 2 (0.95) was dropped after step 2: the x0 score decides, not hindsight
    dropped = {d["candidate"]: (d["step"], round(d["score"], 3)) for d in result.pruner.dropped}
    assert dropped == {0: (2, 0.2), 2: (2, 0.6), 3: (2, 0.1), 5: (3, 0.2)}


def test_report_is_the_cli_format_and_counts_the_work():
    result, segments = run(keep=2)
    report = json.loads(result.report_json())
    stages = BestOfNSettings(N, 2, "3@0.34,2@0.5", STEPS).stages()
    assert report["transformer_forwards"] == segments.forwards == forwards(N, stages, STEPS) == 6 * 2 + 3 + 2 * 3
    assert report["full_forwards"] == N * STEPS
    assert report["decodes"] == report["scores"] == N + 3 + 2
    assert {"wall_time_s", "n", "keep", "prune", "stages", "dropped", "survivors", "kept", "prompt"} <= report.keys()
    assert report["kept"] == result.kept and report["survivors"] == [1, 4]
    assert [s["step"] for s in report["stages"]] == [2, 3]
    assert "21 model forwards (36 without pruning)" in result.text_lines()[0]


def test_no_schedule_is_one_segment_ranked_by_final_score():
    result, segments = run(keep=3, schedule="none")
    assert [(s, e) for s, e, _, _ in segments.calls] == [(0, STEPS)]
    assert result.candidates == [2, 4, 1] and result.pruner.dropped == []
    assert result.positions == [2, 4, 1]
    assert result.report["transformer_forwards"] == result.report["full_forwards"] == N * STEPS


def test_default_schedule_where_it_fits():
    assert BestOfNSettings(16, 1, "default", 6).resolved() == DEFAULT_SCHEDULE
    assert BestOfNSettings(2, 1, "default", 6).resolved() == "none"  # nothing to prune
    assert BestOfNSettings(16, 3, "default", 6).resolved() == "8@0.34,3@0.5"  # scaled to N and K
    assert BestOfNSettings(16, 1, " ", 6).resolved() == "none"


@pytest.mark.parametrize("n, keep, schedule, expected", [
    (4, 5, "none", "keep 5 is more than n 4"),
    (8, 1, "8@0.5", "does not shrink"),
    (8, 1, "4@0.5,6@0.7", "does not shrink"),
    (8, 1, "4@1.5", "outside (0, 1)"),
    (8, 1, "4@0", "outside (0, 1)"),
    (8, 3, "2@0.5", "fewer candidates than keep 3"),
    (8, 1, "four@half", "not KEEP@FRACTION"),
])  # fmt: skip
def test_bad_settings_name_the_input(n, keep, schedule, expected):
    problems = check_settings(BestOfNSettings(n, keep, schedule, STEPS))
    assert len(problems) == 1 and expected in problems[0], problems
    assert "--" not in problems[0]  # node wording, not the CLI's flags
    with pytest.raises(ValueError, match="schedule|keep"):
        run(n=n, keep=keep, schedule=schedule)


def test_a_scorer_that_miscounts_is_an_error():
    segments = FakeSegments()
    with pytest.raises(RuntimeError, match="3 scores for 6 images"):
        pruned_best_of_n(BestOfNSettings(N, 1, "3@0.5", STEPS), torch.zeros(N, 2, 2, 2), segments, decode,
                         lambda images: score(images)[:3], "p")  # fmt: skip
