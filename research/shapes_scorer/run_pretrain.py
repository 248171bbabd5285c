"""Run only the base-pretraining stage of the shapes recipe, with any PretrainConfig field on the command line.

    python research/shapes_scorer/run_pretrain.py --train DATA --val HELDOUT --out OUT --minutes 10 --aux-position 1
"""

import argparse
import sys
from dataclasses import fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from research.shapes_scorer.shapes_pretrain import PretrainConfig, pretrain  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--train", required=True)
ap.add_argument("--val", required=True)
ap.add_argument("--out", required=True)
for f in fields(PretrainConfig):
    ap.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
a = ap.parse_args()
cfg = PretrainConfig(**{f.name: getattr(a, f.name) for f in fields(PretrainConfig)})
print(pretrain(Path(a.train), Path(a.val), Path(a.out), cfg, progress=lambda s: print(s, flush=True)))
