"""A shapes generator folder for the best-of-N tests: the shipped one when present, else the shipped architecture
with random weights (saved and reloaded like the real one)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def shapes_generator_dir(tmp_path_factory):
    from training.grpo.shapes_generator import (
        SAMPLING_FILE,
        GeneratorShape,
        Sampling,
        build_pipeline,
        sampling_record,
    )
    from training.grpo.shipped import GENERATORS

    shipped = GENERATORS["shapes"]
    if (shipped / "model_index.json").is_file():
        return shipped
    folder = tmp_path_factory.mktemp("bestofn-gen") / "generator"
    build_pipeline(GeneratorShape(), seed=5).save_pretrained(folder, safe_serialization=True)
    (folder / SAMPLING_FILE).write_text(json.dumps(sampling_record(Sampling(), GeneratorShape())))
    return folder
