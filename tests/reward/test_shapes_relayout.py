"""The shapes recipe's re-layout negatives: oracle-rejected, sharing the perfect image, readable as pairs."""

import json

from PIL import Image

from training.dataset.oracle import judge
from training.reward.recipes.shapes_relayout import build_mix
from training.reward.train.pairs import read_pairs

from .reward_pairs import build_shapes


def test_relayout_negatives_are_rejected_by_the_oracle_and_train_ready(tmp_path):
    data = build_shapes(tmp_path / "data", 12, 4321)
    mix = build_mix(data, tmp_path / "mix", per_row=2, seed=3)
    rows = [json.loads(x) for x in mix.read_text().splitlines()]
    own = [r for r in rows if r.get("generator") != "shapes-relayout"]
    extra = [r for r in rows if r.get("generator") == "shapes-relayout"]
    assert len(own) == 12 and len(extra) == 24
    by_id = {r["id"]: r for r in own}
    for r in extra:
        parent = by_id[r["id"].rsplit("-relayout", 1)[0]]
        assert r["chosen"] == parent["chosen"] and r["prompt"] == parent["prompt"] and r["split"] == parent["split"]
        verdict = judge(Image.open(r["rejected"]), r["prompt"])
        assert not verdict.all and r["perturbations"] == sum(not h for h in verdict.holds)
    pairs = read_pairs(mix)  # absolute paths, layouts for the grounding loss on every row
    assert len(pairs) == 36 and all(p.layouts is not None for p in pairs)
    # Deterministic, and a second call finds the finished file instead of redoing it.
    again = build_mix(data, tmp_path / "mix2", per_row=2, seed=3)
    assert [json.loads(x)["perturbations"] for x in again.read_text().splitlines()] == \
        [r["perturbations"] for r in rows]
    mtime = mix.stat().st_mtime_ns
    assert build_mix(data, tmp_path / "mix", per_row=2, seed=3) == mix and mix.stat().st_mtime_ns == mtime
