"""The review page's ComfyUI routes, without ComfyUI: the route logic with stand-in requests, then (when aiohttp,
ComfyUI's server library, is installed) the same routes on a real aiohttp server, as PromptServer would add them."""

from __future__ import annotations

import asyncio
import json
import shutil
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
    """What the handler reads of an aiohttp request. Like a browser's same-origin fetch, it names ComfyUI's own Host
    and Origin and the body's Content-Length unless `headers` says otherwise (None removes a header)."""

    def __init__(self, method, tail, query=None, body=b"", content_type="application/json", headers=None):
        self.method, self.match_info, self.query = method, {"tail": tail}, query or {}
        own = {"Host": "127.0.0.1:8188", "Origin": "http://127.0.0.1:8188", "Content-Type": content_type,
               "Content-Length": str(len(body))} if method == "POST" else {"Host": "127.0.0.1:8188"}
        self.headers = {k: v for k, v in {**own, **(headers or {})}.items() if v is not None}
        self._body = body
        self.reads = 0

    async def read(self):
        self.reads += 1
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


def test_route_logic_refuses_verdicts_from_other_pages_and_bodies_of_bad_length(dataset, tmp_path):
    folder = Path(shutil.copytree(dataset, tmp_path / "ds", ignore=shutil.ignore_patterns("reviews.jsonl")))
    handler = make_handler(review_router(), respond=lambda r: r)
    first = json.loads(call(handler, "GET", "api/index", {"dir": str(folder)}).body)["entries"][0]["id"]
    body = json.dumps({"id": first, "verdict": "swap"}).encode()
    # ComfyUI 0.3.64's own origin check stops the first two only while its Host is a loopback address; the null
    # origin, a Referer alone, a page on the LAN when ComfyUI listens there, and the bad lengths get past it
    refused = [
        ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403),
        ({"Origin": "http://127.0.0.1:9999"}, 403),
        ({"Origin": "null"}, 403),
        ({"Origin": None, "Referer": "http://127.0.0.1:9999/attack.html"}, 403),
        ({"Host": "192.168.1.20:8188", "Origin": "http://192.168.1.99:8000"}, 403),  # ComfyUI on --listen
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": None, "Content-Type": "text/plain; charset=application/json"}, 415),
        ({"Content-Length": "abc"}, 400),
        ({"Content-Length": "-1"}, 400),
        ({"Content-Length": "400000000"}, 413),
        ({"Content-Length": None, "Transfer-Encoding": "chunked"}, 411),
    ]
    for headers, status in refused:
        request = FakeRequest("POST", "api/verdict", {"dir": str(folder)}, body, headers=headers)
        answer = asyncio.run(handler(request))
        assert (answer.status, headers) == (status, headers)
        assert list(json.loads(answer.body)) == ["error"] and request.reads == 0  # refused before reading the body
    assert not (folder / "reviews.jsonl").exists()
    for bad, said in (({"id": ["x"], "verdict": "swap"}, '"id" must be a string, got list'),
                      ({"id": first, "verdict": {"v": 1}}, "unknown verdict {'v': 1}")):
        answer = call(handler, "POST", "api/verdict", {"dir": str(folder)}, json.dumps(bad).encode())
        assert answer.status == 400 and json.loads(answer.body)["error"].startswith(said)
    assert not (folder / "reviews.jsonl").exists()
    assert call(handler, "POST", "api/verdict", {"dir": str(folder)}, body).status == 200  # the page itself
    assert len((folder / "reviews.jsonl").read_text().splitlines()) == 1


def test_a_folder_whose_reviews_file_is_a_link_is_refused(dataset, tmp_path):
    folder = Path(shutil.copytree(dataset, tmp_path / "ds", ignore=shutil.ignore_patterns("reviews.jsonl")))
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("not yours\n")
    (folder / "reviews.jsonl").symlink_to(foreign)
    handler = make_handler(review_router(), respond=lambda r: r)
    answer = call(handler, "GET", "api/index", {"dir": str(folder)})
    assert answer.status == 409 and "is a symbolic link" in json.loads(answer.body)["error"]
    rows = [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]
    body = json.dumps({"id": rows[0]["id"], "verdict": "swap"}).encode()
    assert call(handler, "POST", "api/verdict", {"dir": str(folder)}, body).status == 409
    assert foreign.read_text() == "not yours\n"


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
            for headers in ({"Origin": "null"}, {"Referer": "http://127.0.0.1:1/attack.html"},
                            {"Origin": f"http://127.0.0.1:{client.port + 1}"}):
                forged = await client.post(PREFIX + "/api/verdict", params={"dir": str(dataset)}, headers=headers,
                                           json={"id": second, "verdict": "reject"})
                assert forged.status == 403 and "review page" in (await forged.json())["error"]
            forged = await client.post(PREFIX + "/api/verdict", params={"dir": str(dataset)},
                                       headers={"Content-Type": "text/plain"},
                                       data=json.dumps({"id": second, "verdict": "reject"}))
            assert forged.status == 415
            bad = await client.get(PREFIX + "/api/index", params={"dir": str(tmp_path)})
            assert bad.status == 404 and "no manifest.jsonl" in (await bad.json())["error"]

    asyncio.run(scenario())
    last = json.loads((dataset / "reviews.jsonl").read_text().splitlines()[-1])
    assert last["verdict"] == "swap" and last["reviewer"] == "comfy"
