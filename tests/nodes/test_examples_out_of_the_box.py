"""The score example runs as it is: the built-in scorer, a picture the pack installs, a prompt in its world; the
Flux example says what to download (issue 12, newcomer findings)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageSequence

from nodes.logic.discovery import BUILTIN_SHAPES
from nodes.logic.examples import ASSETS, EXAMPLE_INPUTS, install_example_inputs

ROOT = Path(__file__).resolve().parents[2]


def _widgets(name: str) -> dict[str, list]:
    wf = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
    return {n["type"]: n.get("widgets_values") for n in wf["nodes"]}


def test_score_example_uses_only_what_ships():
    w = _widgets("spatialscore_score_images")
    assert w["SpatialScoreLoader"][0] == BUILTIN_SHAPES
    assert w["LoadImage"][0] in EXAMPLE_INPUTS and (ASSETS / w["LoadImage"][0]).is_file()


def test_the_example_picture_ranks_its_true_layout_first_without_warnings():
    from training.reward import load_scorer

    w = _widgets("spatialscore_score_images")
    with Image.open(ASSETS / w["LoadImage"][0]) as im:
        frames = [f.convert("RGB") for f in ImageSequence.Iterator(im)]
    result = load_scorer(BUILTIN_SHAPES).score(frames, w["SpatialScoreScore"][0])
    means = result.mean.tolist()
    assert len(frames) == 4 and means[0] == max(means)
    assert not any(result.warnings)


def test_example_inputs_are_copied_once_and_never_over_a_users_file(tmp_path):
    copied = install_example_inputs(tmp_path / "input")
    assert [p.name for p in copied] == list(EXAMPLE_INPUTS)
    mine = tmp_path / "input" / EXAMPLE_INPUTS[0]
    mine.write_bytes(b"the user's own file")
    assert install_example_inputs(tmp_path / "input") == []
    assert mine.read_bytes() == b"the user's own file"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert install_example_inputs(blocker / "input") == []  # unwritable: no error, nothing copied


def test_flux_example_note_says_what_to_download_and_where():
    note = _widgets("spatialscore_flux_best_of_n")["MarkdownNote"][0]
    for needed in ("flux1-dev.safetensors", "models/diffusion_models/", "clip_l.safetensors",
                   "t5xxl_fp16.safetensors", "models/text_encoders/", "ae.safetensors", "models/vae/",
                   "models/spatialscore/", "Qwen/Qwen2.5-VL-7B-Instruct"):
        assert needed in note, needed


def test_every_picture_an_example_workflow_loads_is_installed():
    import json
    from pathlib import Path

    names = set()
    for workflow in (Path(__file__).resolve().parents[2] / "workflows").glob("*.json"):
        for node in json.loads(workflow.read_text()).get("nodes", []):
            if node.get("type") == "LoadImage":
                names.add(node["widgets_values"][0])
    assert names and names <= set(EXAMPLE_INPUTS)
    assert all((ASSETS / n).is_file() for n in names)
