"""Builds with real diffusers pipelines (a tiny random FluxPipeline saved to a folder), scorer verification and
language-model paraphrasing. The images are noise; what is tested is the plumbing."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from PIL import Image

from training.common.tiny_flux import save_tiny_flux_pipeline
from training.dataset.__main__ import main
from training.dataset.config import BuildConfig
from training.dataset.generators import Generator, GeneratorError, check_generator_folder
from training.dataset.manifest import load_manifest

from .helpers import quiet_build, snapshot


@pytest.fixture(scope="module")
def fluxes(tmp_path_factory):
    root = tmp_path_factory.mktemp("generators")
    return save_tiny_flux_pipeline(root / "flux_a", seed=0), save_tiny_flux_pipeline(root / "flux_b", seed=1)


def _gen_config(out, generators, **kw):
    kw.setdefault("pairs", 4)
    kw.setdefault("seed", 1)
    return BuildConfig(out=out, generators=[str(g) for g in generators], height=64, width=64, steps=2,
                       batch_size=3, progress=False, **kw)


def test_tiny_flux_build_writes_a_valid_manifest_with_seeds(tmp_path, fluxes):
    out = tmp_path / "ds"
    summary = quiet_build(_gen_config(out, fluxes, pairs=6))
    rows = load_manifest(out)
    assert summary["pairs"] == len(rows) == 6 and summary["complete"]
    assert summary["by_generator"] == {"flux_a": 4, "flux_b": 2}  # round-robin by scene (3 scenes)
    for r in rows:
        assert r["world"] == "general" and r["generator"] in ("flux_a", "flux_b")
        assert set(r["seeds"]) == {"chosen", "rejected"} and r["seeds"]["chosen"] == r["seeds"]["rejected"]
        assert isinstance(r["seeds"]["chosen"], int) and 0 <= r["seeds"]["chosen"] < 2**31
        for key in ("chosen", "rejected"):
            with Image.open(r[key]) as img:
                assert img.size == (64, 64)
        assert r["prompt"] != r["perturbed_prompt"]
    # Seeds are per image: regenerating one image alone from its row gives the same picture (up to float
    # rounding of a different batch size), and another seed gives another picture.
    import numpy as np

    r = rows[0]
    gen = Generator(fluxes[0] if r["generator"] == "flux_a" else fluxes[1], r["generator"])
    stored = np.asarray(Image.open(r["chosen"]).convert("RGB"), dtype=np.int16)
    again = np.asarray(gen([r["prompt"]], [r["seeds"]["chosen"]], 64, 64, 2, 3.5)[0], dtype=np.int16)
    other = np.asarray(gen([r["prompt"]], [r["seeds"]["chosen"] + 1], 64, 64, 2, 3.5)[0], dtype=np.int16)
    assert np.abs(again - stored).max() <= 2 and np.abs(other - stored).mean() > 10
    # Resuming a finished build changes nothing and generates nothing.
    before = snapshot(out)
    quiet_build(_gen_config(out, fluxes, pairs=6))
    assert snapshot(out) == before


def test_resume_reuses_images_already_generated(tmp_path, fluxes, monkeypatch):
    out = tmp_path / "ds"
    cfg = _gen_config(out, fluxes[:1], pairs=4, chunk_pairs=2)
    quiet_build(cfg)
    first = snapshot(out)
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "manifest.jsonl").write_text("".join(lines[:2]))  # as if killed after images, before rows
    calls = []
    real = Generator.__call__
    monkeypatch.setattr(Generator, "__call__", lambda self, p, *a: calls.append(len(p)) or real(self, p, *a))
    quiet_build(cfg)
    assert snapshot(out) == first and calls == []  # every image was on disk already


def test_scorer_verification_keeps_only_pairs_scored_the_right_way(tmp_path, fluxes):
    import torch

    class FakeScorer:  # prefers the perfect image, except for the pairs numbered 1
        def score(self, images, prompts):
            assert len(set(zip(images, prompts, strict=True))) == len(images)  # nothing scored twice
            return type("R", (), {"mean": torch.tensor(
                [(1.0 if "_c" in str(p) else 0.0) if "-p1_" not in str(p) else (2.0 if "_r" in str(p) else 0.0)
                 for p in images])})()

        def release(self):
            pass

    out = tmp_path / "ds"
    summary = quiet_build(_gen_config(out, fluxes[:1], pairs=3, verify_scorer="fake", verify_margin=0.5),
                          load_scorer=lambda *a, **k: FakeScorer())
    rows = load_manifest(out)
    assert [r["id"] for r in rows] == ["s0000000-p0", "s0000001-p0", "s0000002-p0"]
    assert all(r["verification"]["scorer"]["margin"] == 1.0 for r in rows)
    assert summary["dropped"] == 2 and summary["dropped_by_reason"] == {"scorer": 2}


def test_real_tiny_scorer_verifies_and_shapes_oracle_drops_noise(tmp_path, fluxes):
    from training.reward import load_scorer
    from training.reward.models.tiny import save_tiny_scorer

    scorer = save_tiny_scorer(tmp_path / "scorer", seed=0)
    out = tmp_path / "ds"
    summary = quiet_build(_gen_config(out, fluxes[:1], pairs=2, verify_scorer=str(scorer), verify_margin=-1e9),
                          load_scorer=load_scorer)
    rows = load_manifest(out)
    assert len(rows) == 2 and summary["scorer"]["checked"] == 2
    m = rows[0]["verification"]["scorer"]
    assert m["margin"] == pytest.approx(m["chosen"] - m["rejected"], abs=1e-5)
    # Shapes prompts drawn by a generator are checked by the oracle: noise images confirm nothing.
    shapes = tmp_path / "shapes"
    summary = quiet_build(_gen_config(shapes, fluxes[:1], world="shapes", pairs=2, max_candidates=4))
    assert not summary["complete"] and summary["pairs"] == 0 and summary["dropped"] == 4
    assert "only 0 of 2 pairs passed verification" in "\n".join(summary["logs"])
    assert not list((shapes / "images").rglob("*.png"))  # images of dropped pairs are not kept


def test_generator_folder_errors(tmp_path, fluxes, capsys):
    with pytest.raises(GeneratorError, match="generator folder not found"):
        check_generator_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GeneratorError, match="has no model_index.json"):
        check_generator_folder(tmp_path / "empty")
    gen = Generator(fluxes[0], "flux_a", pipeline_kwargs={"no_such_argument": 1})
    with pytest.raises(GeneratorError, match="takes no argument.*no_such_argument"):
        gen(["a red cup"], [0], 64, 64, 1, 3.5)
    rc = main(["build", "--generator", str(fluxes[0]), "--generator", str(tmp_path / "missing"),
               "--out", str(tmp_path / "ds")])
    assert rc == 2 and f"generator folder not found: {tmp_path / 'missing'}" in capsys.readouterr().err


class _ChatStub(BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/chat/completions that rewrites the description it is sent."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["messages"][-1]["content"].split("Description: ", 1)[1]
        self.server.requests.append(body)
        reply = "In this picture, " + text[0].lower() + text[1:] if self.server.faithful else "A nice image."
        data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("faithful", [True, False])
def test_paraphrase_through_an_openai_compatible_endpoint(tmp_path, fluxes, faithful):
    server = HTTPServer(("127.0.0.1", 0), _ChatStub)
    server.requests, server.faithful = [], faithful
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        out = tmp_path / "ds"
        quiet_build(_gen_config(out, fluxes[:1], pairs=2, paraphrase_url=url, paraphrase_api_model="m"))
    finally:
        server.shutdown()
    rows = load_manifest(out)
    assert server.requests and server.requests[0]["model"] == "m" and server.requests[0]["temperature"] == 0
    for r in rows:
        assert r["paraphrased"] is faithful
        assert r["prompt"].startswith("In this picture, ") is faithful  # unfaithful rewrites are never used
        assert r["perturbed_prompt"].startswith("In this picture, ") is faithful


def test_local_language_model_paraphraser_loads_offline_and_falls_back(tmp_path):
    import random

    from transformers import Qwen2Config, Qwen2ForCausalLM

    from training.dataset.paraphrase import LocalParaphraser, ParaphraseError, paraphrase_pair
    from training.dataset.perturb import perturb
    from training.dataset.prompts import plain_prompt
    from training.dataset.scene import sample_scene
    from training.dataset.worlds import GENERAL
    from training.reward.models.tiny import build_tiny_tokenizer

    with pytest.raises(ParaphraseError, match="not found or has no config.json"):
        LocalParaphraser(tmp_path / "nope")
    tok = build_tiny_tokenizer()
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    para = LocalParaphraser(tmp_path / "lm", device="cpu", max_new_tokens=12)
    scene = sample_scene(GENERAL, random.Random(0))
    pert = perturb(scene, GENERAL, random.Random(0), 1).scene
    a, b = plain_prompt(scene), plain_prompt(pert)
    assert isinstance(para(a), str)
    assert para(a) == para(a)  # greedy decoding: deterministic
    assert paraphrase_pair(para, a, b, scene, pert) == (a, b, False)  # a random LM is never faithful
