"""The review page inside a real ComfyUI (headless, 127.0.0.1, this pack installed): the routes answer under the
pack's prefix on ComfyUI's own server, and (with Chromium and playwright-core) the sidebar tab opens the page and
a key gives a verdict. Skipped, with the reason, unless SPATIALSCORE_COMFYUI names a ComfyUI checkout."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ..dataset.helpers import quiet_build, shapes_config
from .comfyui_harness import ComfyServer, find_comfyui

CHECKOUT, PYTHON, REASON = find_comfyui()
pytestmark = [pytest.mark.skipif(CHECKOUT is None, reason=REASON), pytest.mark.slow, pytest.mark.real_parts]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    data = tmp_path_factory.mktemp("comfy-review-data") / "shapes"
    quiet_build(shapes_config(data, pairs=16, seed=4))
    with ComfyServer(CHECKOUT, PYTHON, tmp_path_factory.mktemp("comfy-review"), startup_timeout=900) as server:
        yield server, data


def test_the_review_routes_answer_on_comfyuis_server(setup):
    server, data = setup
    index = server.get(f"/spatialscore/review/api/index?dir={urllib.request.quote(str(data))}", timeout=120)
    assert len(index["entries"]) == 16 and index["folder"] == str(data.resolve())
    first = index["entries"][0]["id"]
    status, answer = server.post(f"/api/spatialscore/review/api/verdict?dir={urllib.request.quote(str(data))}",
                                 {"id": first, "verdict": "reject", "reviewer": "comfy"}, timeout=120)
    assert status == 200 and answer["verdict"] == "reject"
    last = json.loads((data / "reviews.jsonl").read_text().splitlines()[-1])
    assert (last["id"], last["verdict"], last["reviewer"]) == (first, "reject", "comfy")
    with urllib.request.urlopen(server.url + "/spatialscore/review/", timeout=120) as r:
        assert b'src="static/review.js"' in r.read()
    with urllib.request.urlopen(server.url + "/extensions/comfyui-spatialscore/spatialscore_review.js", timeout=120) as r:
        assert b"registerSidebarTab" in r.read()


def test_a_verdict_from_another_page_is_refused_inside_comfyui(setup):
    """ComfyUI 0.3.64's own origin check stops a foreign Origin on a loopback Host; the pack's check also stops the
    null origin and a foreign Referer, which ComfyUI lets through, and a body that is not declared JSON."""
    server, data = setup
    index = server.get(f"/spatialscore/review/api/index?dir={urllib.request.quote(str(data))}", timeout=120)
    body = json.dumps({"id": index["entries"][1]["id"], "verdict": "swap"}).encode()
    reviews = data / "reviews.jsonl"
    before = reviews.read_bytes() if reviews.exists() else b""
    for prefix in ("/spatialscore/review", "/api/spatialscore/review"):
        url = server.url + f"{prefix}/api/verdict?dir={urllib.request.quote(str(data))}"
        for headers, status in (({"Origin": "null"}, 403), ({"Referer": "http://127.0.0.1:1/attack.html"}, 403),
                                ({"Origin": f"http://127.0.0.1:{server.port + 1}"}, 403),
                                ({"Content-Type": "text/plain; charset=application/json"}, 415)):
            req = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **headers})
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=120)
            assert (err.value.code, headers) == (status, headers)
    assert (reviews.read_bytes() if reviews.exists() else b"") == before


def test_the_sidebar_tab_opens_the_page_and_a_key_gives_a_verdict(setup, tmp_path):
    from ..dataset.test_review_browser import find_tools

    node, chromium, playwright = find_tools()
    server, data = setup
    out = subprocess.run([node, str(Path(__file__).with_name("review_comfyui_browser.mjs")), json.dumps(
        {"url": server.url, "chromium": chromium, "folder": str(data), "key": "s",
         "screenshot": str(tmp_path / "comfy.png")})], capture_output=True, text=True, timeout=900, cwd=ROOT,
        env={**os.environ, "PLAYWRIGHT_CORE": playwright})
    assert out.returncode == 0, out.stdout + out.stderr + server.log_tail()
    run = json.loads(out.stdout.strip().splitlines()[-1])
    assert run["errors"] == [] and run["reviewErrors"] == []
    assert run["menu"]["commands"] == ["SpatialScore.ReviewDataset"]
    assert run["menu"]["menu"] == ["Extensions > SpatialScore"]
    assert run["tabLabel"] == "SpatialScore: review a SpatialReward dataset"
    assert run["first"]["src"].endswith(f"/spatialscore/review/?dir={urllib.request.quote(str(data), safe='')}")
    last = json.loads((data / "reviews.jsonl").read_text().splitlines()[-1])
    assert (last["id"], last["verdict"]) == (run["first"]["shown"], "swap")
