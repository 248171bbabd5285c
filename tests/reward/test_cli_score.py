import json
import subprocess
import sys

from PIL import Image

from training.reward.__main__ import main


def write_images(tmp_path):
    paths = []
    for i, colour in enumerate([(220, 20, 20), (20, 20, 220)]):
        p = tmp_path / f"im{i}.png"
        Image.new("RGB", (64, 64), colour).save(p)
        paths.append(str(p))
    return paths


def test_score_json_on_saved_scorer(tiny_scorer_full, tmp_path, capsys):
    paths = write_images(tmp_path)
    out = tmp_path / "o.json"
    assert main(["score", "--model", str(tiny_scorer_full), "--prompt", "a red circle", "--json",
                 "--output", str(out), *paths]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in rows] == paths
    assert all(r["std"] > 0 and r["mode"] == "reward" for r in rows)
    assert json.loads(out.read_text()) == rows


def test_score_table_zero_shot_in_subprocess(tiny_base, tmp_path):
    paths = write_images(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "training.reward", "score", "--model", str(tiny_base),
                           "--prompt", "a red circle", "--prompt", "a blue square", *paths],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("mode: zero-shot")
    assert len(lines) == 4 and all(line.split()[-1] == "0.0000" for line in lines[2:])
