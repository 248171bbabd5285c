"""Clean first: pairs that rank a clean picture with a relation wrong above a cluttered one.

The object faults (training/reward/recipes/shapes_objects.py) and the generated pairs (verified > unclean) teach
the scorer that clutter is worse than the perfect picture, but say nothing about clutter against a wrong layout. Left to itself the scorer
judges such a pair by the relations it can read, and a cluttered picture where every relation holds among the extra
objects outscores a clean one with a relation wrong: GRPO against it then raises the oracle's all-relations rate
while clean pictures become rarer (research/shapes_grpo/journal.md, 2026-12-02, commit 85a0e6f). In the shapes
world a picture that draws objects the prompt does not name, or a named one twice or smeared, does not follow the
prompt, so these pairs put every clean picture above it:

  synthetic   the dataset row's perturbed picture (clean, 1-3 relations wrong) > its perfect scene with a clutter
              fault (a named object doubled, bars in the prompt's colours, objects in other colours), both rendered
              already by the earlier stages
  generated   within a group of the generator's own samples (training/grpo/recipes/shapes_generated_pairs.py):
              a clean picture with a relation wrong > a picture that is not clean (any relations)

Writes out/pairs.jsonl (atomically; skipped when it exists). No new pictures are drawn. It reads GRPO's generated
pairs and oracle, so it sits above both stages, in training/recipes/ (the shapes-gen scorer recipe, shapes_scorer.py).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from ..common.atomic import write_text

CLUTTER_KINDS = ("duplicate", "clutter", "extra")
PAIRS_FILE = "pairs.jsonl"


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def synthetic_pairs(objects_pairs: Path) -> list[dict]:
    rows = _rows(objects_pairs)
    by_id = {r["id"]: r for r in rows}
    out = []
    for r in rows:
        kind = str(r.get("generator", "")).removeprefix("shapes-objects-")
        if kind not in CLUTTER_KINDS:
            continue
        source = by_id.get(re.sub(rf"-{kind}\d+$", "", r["id"]))
        if source is None or not isinstance(source.get("perturbed_scene"), dict):
            continue
        out.append({"id": f"{r['id']}-cleanfirst", "scene_id": r.get("scene_id"), "split": r.get("split"),
                    "prompt": r["prompt"], "chosen": source["rejected"], "rejected": r["rejected"],
                    "perturbations": 1, "scene": source["perturbed_scene"], "perturbed_scene": r["perturbed_scene"],
                    "generator": f"shapes-clean-first-{kind}"})
    return out


def generated_clean_first(generated_pairs: Path, per_image: int = 2) -> list[dict]:
    """Re-judges the saved pictures of each group (the pairs file records levels, not cleanliness of a picture
    with a relation wrong) and pairs each clean one with a relation wrong against up to `per_image` unclean ones."""
    from PIL import Image

    from ..grpo.oracle_judge import oracle_verdicts
    from ..grpo.recipes.shapes_generated_pairs import DRAWN, UNCLEAN, VERIFIED, split_of

    groups: dict[int, dict[str, tuple[int, dict, str]]] = defaultdict(dict)
    for r in _rows(generated_pairs):
        k = int(re.match(r"gen-\w+?(\d+)-", r["id"]).group(1))
        for image, level, scene in ((r["chosen"], r["levels"][0], r["scene"]),
                                    (r["rejected"], r["levels"][1], r["perturbed_scene"])):
            groups[k][image] = (level, scene, r["prompt"])
    out = []
    for k, images in sorted(groups.items()):
        drawn = [p for p, (lv, _, _) in images.items() if lv == DRAWN]
        if not drawn:
            continue
        prompt = next(iter(images.values()))[2]
        with_pictures = []
        for p in drawn:
            with Image.open(p) as im:
                with_pictures.append(im.convert("RGB"))
        clean = [p for p, v in zip(drawn, oracle_verdicts(with_pictures, [prompt] * len(drawn)), strict=True)
                 if v["clean"]]
        unclean = [p for p, (lv, _, _) in images.items() if lv == UNCLEAN]
        unclean += [p for p in drawn if p not in clean]  # a relation wrong and not clean either
        for good in clean:
            for bad in unclean[:per_image]:
                assert images[good][0] != VERIFIED
                out.append({"id": f"gen-cleanfirst{k:05d}-{Path(good).stem}-{Path(bad).stem}", "split": split_of(k),
                            "prompt": prompt, "chosen": good, "rejected": bad, "perturbations": 1,
                            "scene": images[good][1], "perturbed_scene": images[bad][1],
                            "generator": "shapes-clean-first-generated"})
    return out


def build_clean_first(objects_pairs: Path | None, generated_pairs: Path | None, out: Path) -> Path:
    result = out / PAIRS_FILE
    if result.is_file():
        return result
    rows = synthetic_pairs(objects_pairs) if objects_pairs is not None else []
    if generated_pairs is not None:
        rows += generated_clean_first(generated_pairs)
    out.mkdir(parents=True, exist_ok=True)
    write_text(result, "".join(json.dumps(r) + "\n" for r in rows))
    return result
