"""--prune none is plain best-of-N: the kept images equal plain sampling (training.grpo.sampling.generate) followed
by the Rerank node's logic; a pruned run finishes its survivors into the very images the full run made, for fewer
transformer forwards."""

from __future__ import annotations

import argparse

import pytest

from tests.threads import one_torch_thread

PROMPT = "a red circle to the left of a blue square"
N, STEPS = 6, 4


@pytest.fixture(scope="module")
def setup(shapes_generator_dir):
    from training.grpo.sampling import load_policy, settings_for
    from training.reward.scorer import load_scorer

    settings = settings_for(shapes_generator_dir, argparse.Namespace(num_steps=STEPS, guidance=None, height=None,
                                                                     width=None))  # fmt: skip
    with one_torch_thread():
        policy = load_policy(shapes_generator_dir, None, "cpu", settings["max_sequence_length"])
        policy.transformer.disable_adapters()
        scorer = load_scorer("shapes", device="cpu")
    return policy, settings, scorer


def _score_fn(scorer):
    return lambda images, prompts: scorer.score(images, prompts).mean


def test_prune_none_equals_plain_sampling_then_rerank(setup):
    from nodes.logic.rerank import rerank
    from nodes.logic.scoring import ScoreTable
    from training.bestofn.sampler import best_of_n, prompt_seed
    from training.grpo.sampling import generate

    policy, settings, scorer = setup
    seed = prompt_seed(7, 3)
    with one_torch_thread():
        ours = best_of_n(policy, PROMPT, N, 3, [], settings, seed, _score_fn(scorer))
        plain = generate(policy, [PROMPT] * N, settings, seed, batch_size=N, lora=True)
        result = scorer.score(plain, [PROMPT] * N)
    table = ScoreTable(mean=result.mean, std=result.std, prompts=[PROMPT] * N, mode=result.mode)
    theirs = rerank(table, plain, top_k=3)
    assert [k["candidate"] for k in ours.kept] == theirs.ranking.indices.tolist()
    assert [k["score"] for k in ours.kept] == pytest.approx(theirs.ranking.mean.tolist(), abs=1e-5)
    assert (ours.images - theirs.images).abs().max().item() < 1e-5
    assert ours.counters.transformer_forwards == N * STEPS
    assert ours.pruner.dropped == []


def test_pruned_run_finishes_survivors_into_the_full_runs_images(setup):
    from training.bestofn.sampler import best_of_n
    from training.bestofn.schedule import forwards, resolve_schedule

    policy, settings, scorer = setup
    stages = resolve_schedule("3@0.25,2@0.5", N, 2, STEPS)
    with one_torch_thread():
        full = best_of_n(policy, PROMPT, N, N, [], settings, 11, _score_fn(scorer), trace=True)
        pruned = best_of_n(policy, PROMPT, N, 2, stages, settings, 11, _score_fn(scorer))
    assert pruned.counters.transformer_forwards == forwards(N, stages, STEPS) == N + 3 + 2 * 2
    assert pruned.counters.decodes == pruned.counters.scores == N + 3 + 2
    # who survived step 1 is the top 3 of the full run's step-1 x0 scores (the trace)
    step1 = {c: t[0] for c, t in full.pruner.trace.items()}
    dropped1 = {d["candidate"] for d in pruned.pruner.dropped if d["step"] == 1}
    assert dropped1 == set(sorted(step1, key=lambda c: (-step1[c], c))[3:])
    for d in pruned.pruner.dropped:
        # a batch of 6 and a batch of 3 differ in the last float bits, which the scorer magnifies a little
        assert d["score"] == pytest.approx(full.pruner.trace[d["candidate"]][d["step"] - 1], abs=1e-3)
    by_candidate = {k["candidate"]: i for i, k in enumerate(full.kept)}
    for i, kept in enumerate(pruned.kept):
        j = by_candidate[kept["candidate"]]
        assert (pruned.images[i] - full.images[j]).abs().max().item() < 1e-5
        assert kept["score"] == pytest.approx(full.kept[j]["score"], abs=1e-3)
