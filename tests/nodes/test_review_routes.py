"""The review page's ComfyUI routes, without ComfyUI: the route logic with stand-in requests, then (when aiohttp,
ComfyUI's server library, is installed) the same routes on a real aiohttp server, as PromptServer would add them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from nodes.logic.review_routes import PREFIX, make_handler, register, review_router

from ..dataset.helpers import quiet_build, shapes_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("comfy-review") / "shapes"
    quiet_build(shapes_config(out, pairs=12, seed=8))
    return out


class FakeRequest:
    def __init__(self, method, tail, query=None, body=b"", content_type="application/json"):
        self.method, self.match_info, self.query = method, {"tail": tail}, query or {}
        self.headers = {"Content-Type": content_type}
        self._body = body

    async def read(self):
        return self._body


def call(handler, *args, **kw):
    return asyncio.run(handler(FakeRequest(*args, **kw)))


def test_route_logic_reviews_the_folder_named_in_dir(dataset):
    handler = make_handler(review_router(), respond=lambda r: r)
    page = call(handler, "GET", "")
    assert page.status == 200 and b'src="static/review.js"' in page.body
    index = json.loads(call(handler, "GET", "api/index", {"dir": str(dataset)}).body)
    first = index["entries"][0]["id"]
    body = json.dumps({"id": first, "verdict": "reject"}).encode()
    answer = call(handler, "POST", "api/verdict", {"dir": str(dataset)}, body)
    assert answer.status == 200 and json.loads(answer.body)["verdict"] == "reject"
    assert json.loads((dataset / "reviews.jsonl").read_text().splitlines()[-1])["id"] == first
    refused = call(handler, "POST", "api/verdict", {"dir": str(dataset)}, body, content_type="text/plain")
    assert refused.status == 415
    assert call(handler, "GET", "api/index", {"dir": str(dataset / "images")}).status == 404  # not a dataset
    assert call(handler, "GET", "api/index").status == 400  # no folder named


class Routes:
    """Stands in for aiohttp's RouteTableDef: records what register adds."""

    def __init__(self):
        self.added = []

    def get(self, path):
        return lambda handler: self.added.append(("GET", path, handler))

    def post(self, path):
        return lambda handler: self.added.append(("POST", path, handler))


def test_register_adds_the_page_under_the_pack_prefix_and_redirects_to_its_slash():
    routes = Routes()
    register(routes, respond=lambda r: r)
    assert [(m, p) for m, p, _ in routes.added] == [("GET", PREFIX), ("GET", PREFIX + "/{tail:.*}"),
                                                    ("POST", PREFIX + "/{tail:.*}")]
    redirect = asyncio.run(routes.added[0][2](FakeRequest("GET", "", {"dir": "/data/my set"})))
    assert redirect.status == 302 and redirect.headers["Location"] == PREFIX + "/?dir=%2Fdata%2Fmy+set"


def test_route_logic_never_imports_comfyui():
    code = ("import sys, nodes.logic.review_routes as r; r.review_router(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('comfy', 'comfy_api', 'folder_paths', "
            "'server', 'aiohttp')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_routes_on_a_real_aiohttp_server(dataset, tmp_path):
    web = pytest.importorskip("aiohttp.web", reason="aiohttp (ComfyUI's server library) is not installed")
    from aiohttp.test_utils import TestClient, TestServer

    from nodes.review_routes import to_aiohttp

    async def scenario():
        routes = web.RouteTableDef()  # what PromptServer.instance.routes is
        register(routes, to_aiohttp)
        app = web.Application()
        app.add_routes(routes)
        async with TestClient(TestServer(app)) as client:
            redirect = await client.get(PREFIX + f"?dir={quote(str(dataset))}", allow_redirects=False)
            assert redirect.status == 302 and redirect.headers["Location"].startswith(PREFIX + "/?dir=")
            page = await client.get(PREFIX + "/")
            assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
            script = await client.get(PREFIX + "/static/review.js")
            assert script.status == 200 and "text/javascript" in script.headers["Content-Type"]
            index = await (await client.get(PREFIX + "/api/index", params={"dir": str(dataset)})).json()
            image = await client.get(PREFIX + "/img", params={"dir": str(dataset), "i": "1", "side": "rejected"})
            assert image.status == 200 and (await image.read())[:4] == b"\x89PNG"
            second = index["entries"][1]["id"]
            answer = await client.post(PREFIX + "/api/verdict", params={"dir": str(dataset)},
                                       json={"id": second, "verdict": "swap", "reviewer": "comfy"})
            assert answer.status == 200 and (await answer.json())["counts"]["swap"] == 1
            bad = await client.get(PREFIX + "/api/index", params={"dir": str(tmp_path)})
            assert bad.status == 404 and "no manifest.jsonl" in (await bad.json())["error"]

    asyncio.run(scenario())
    last = json.loads((dataset / "reviews.jsonl").read_text().splitlines()[-1])
    assert last["verdict"] == "swap" and last["reviewer"] == "comfy"
