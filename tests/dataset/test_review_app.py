"""The review page's HTTP logic (shared by the CLI server and ComfyUI's routes), called directly, and the CLI."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from training.dataset.review.app import ReviewApp, ReviewRouter
from training.dataset.review.highlight import diff_segments
from training.dataset.review.server import PortInUseError, make_server
from training.reward import load_scorer

from .helpers import quiet_build, shapes_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("review") / "shapes"
    quiet_build(shapes_config(out, pairs=24, seed=5))
    return out


@pytest.fixture
def copy(dataset, tmp_path):
    """A private copy: tests that write verdicts or delete images do not disturb each other."""
    return Path(shutil.copytree(dataset, tmp_path / "ds"))


def get(app, path, **query):
    r = app.handle("GET", path, {k: str(v) for k, v in query.items()})
    return r.status, (json.loads(r.body) if r.content_type == "application/json" else r.body)


def post(app, body, **query):
    r = app.handle("POST", "api/verdict", {k: str(v) for k, v in query.items()}, json.dumps(body).encode())
    return r.status, json.loads(r.body)


def manifest_rows(folder):
    return [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]


def test_index_lists_every_pair_with_what_the_filters_need(copy):
    app = ReviewApp(copy)
    status, index = get(app, "api/index")
    assert status == 200
    rows = manifest_rows(copy)
    assert [e["id"] for e in index["entries"]] == [r["id"] for r in rows]
    assert index["counts"]["unreviewed"] == len(rows) and index["counts"]["reviewed"] == 0
    assert set(index["relations"]) <= {"left_of", "right_of", "above", "below"} and index["relations"]
    assert index["only"] == "unreviewed" and index["split"] == "all"
    # a built shapes dataset is oracle-verified: nothing doubtful
    assert all(e["doubt"] == [] and "missing" not in e for e in index["entries"])
    assert {e["n"] for e in index["entries"]} == {r["perturbations"] for r in rows}


def test_split_restricts_the_pairs_and_a_missing_split_is_named(copy):
    app = ReviewApp(copy, split="val")
    assert {e["split"] for e in app.index()["entries"]} == {"val"}
    with pytest.raises(ValueError, match="split 'nope' has none .*splits present: test, train, val"):
        ReviewApp(copy, split="nope")


def test_pair_details_highlight_the_changed_words_and_carry_the_automatic_verdicts(copy):
    app = ReviewApp(copy)
    rows = manifest_rows(copy)
    status, pair = get(app, "api/pair", i=0)
    assert status == 200 and pair["id"] == rows[0]["id"]
    assert "".join(s["text"] for s in pair["prompt"]) == rows[0]["prompt"]
    assert "".join(s["text"] for s in pair["perturbed"]) == rows[0]["perturbed_prompt"]
    assert any(s["changed"] for s in pair["perturbed"])
    assert pair["auto"]["oracle"] == {"chosen": True, "rejected": True}
    assert len(pair["changes"]) == rows[0]["perturbations"]
    status, live = get(app, "api/oracle", i=0)
    assert status == 200 and live["chosen_all"] is True and live["rejected_exact"] is True
    assert [r["changed"] for r in live["relations"]].count(True) == rows[0]["perturbations"]


def test_highlight_marks_only_the_relation_words():
    a, b = diff_segments("a yellow square below a green circle", "a yellow square to the right of a green circle")
    assert [s["text"] for s in a if s["changed"]] == ["below"]
    assert [s["text"] for s in b if s["changed"]] == ["to the right of"]
    a, b = diff_segments("a red cube left of the blue ball", "the red cube left of a blue ball")
    assert not any(s["changed"] for s in a + b)  # articles alone are not a change of relation


def test_images_are_served_and_only_files_of_the_dataset(copy):
    app = ReviewApp(copy)
    r = app.handle("GET", "img", {"i": "0", "side": "chosen"})
    assert r.status == 200 and r.content_type == "image/png" and r.body[:4] == b"\x89PNG"
    assert app.handle("GET", "img", {"i": "0", "side": "other"}).status == 400
    assert app.handle("GET", "img", {"i": "999", "side": "chosen"}).status == 404
    assert app.handle("GET", "api/pair", {"i": "x"}).status == 400
    assert app.handle("GET", "static/../app.py", {}).status == 404
    assert app.handle("GET", "", {}).body.startswith(b"<!doctype html>")
    assert b"filterQueue" in app.handle("GET", "static/queue.js", {}).body


def test_a_row_whose_images_are_missing_is_listed_as_missing_not_a_crash(copy):
    rows = manifest_rows(copy)
    (copy / rows[2]["rejected"]).unlink()
    rows[3]["chosen"] = "../../../etc/passwd"  # a manifest pointing outside the dataset is never served
    (copy / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    app = ReviewApp(copy)
    entries = app.index()["entries"]
    assert entries[2]["missing"] == ["rejected"] and "rejected image missing" in entries[2]["doubt"]
    assert entries[3]["missing"] == ["chosen"]
    status, pair = get(app, "api/pair", i=2)
    assert status == 200 and pair["missing"] == ["rejected"] and pair["files"]["rejected"] == rows[2]["rejected"]
    status, body = get(app, "img", i=2, side="rejected")
    assert status == 404 and "missing" in body["error"]
    assert get(app, "img", i=3, side="chosen")[0] == 404
    assert get(app, "api/index", only="doubtful")[0] == 200


def test_verdicts_and_undo_go_to_reviews_jsonl_and_the_manifest_is_never_touched(copy):
    before = (copy / "manifest.jsonl").read_bytes()
    app = ReviewApp(copy, reviewer="ana")
    ids = [e["id"] for e in app.index()["entries"]]
    assert post(app, {"id": ids[0], "verdict": "accept"})[1]["verdict"] == "accept"
    assert post(app, {"id": ids[1], "verdict": "swap", "reviewer": "bo"})[1]["counts"]["swap"] == 1
    status, answer = post(app, {"id": ids[1], "verdict": "undo"})
    assert status == 200 and answer["verdict"] is None and answer["counts"]["reviewed"] == 1
    assert post(app, {"id": "no-such-pair", "verdict": "accept"}) == (400, {"error": f"no pair with id "
                                                                          f"'no-such-pair' in {copy}"})
    assert post(app, {"id": ids[0], "verdict": "maybe"})[0] == 400
    assert app.handle("POST", "api/verdict", {}, b"not json").status == 400
    records = [json.loads(x) for x in (copy / "reviews.jsonl").read_text().splitlines()]
    assert [(r["id"], r["verdict"], r.get("reviewer")) for r in records] == [
        (ids[0], "accept", "ana"), (ids[1], "swap", "bo"), (ids[1], "undo", "ana")]
    assert (copy / "manifest.jsonl").read_bytes() == before
    # quit and come back: a new server reads the verdicts and the page resumes after them
    again = ReviewApp(copy)
    assert again.index()["verdicts"] == {ids[0]: "accept"}
    assert get(again, "api/pair", i=0)[1]["verdict"] == "accept"


def test_two_servers_on_one_dataset_see_each_others_verdicts(copy):
    first, second = ReviewApp(copy), ReviewApp(copy)  # e.g. the CLI and ComfyUI, or two processes
    ids = [e["id"] for e in first.index()["entries"]]
    post(first, {"id": ids[0], "verdict": "reject"})
    post(second, {"id": ids[1], "verdict": "accept"})
    assert get(first, "api/verdicts")[1]["verdicts"] == {ids[0]: "reject", ids[1]: "accept"}
    assert get(second, "api/verdicts")[1]["counts"]["reject"] == 1


def test_the_router_serves_any_dataset_folder_named_with_dir(copy, tmp_path):
    router = ReviewRouter()
    assert router.handle("GET", "", {}).status == 200  # the page itself needs no folder
    status = router.handle("GET", "api/index", {})
    assert status.status == 400 and b"name the dataset folder" in status.body
    missing = router.handle("GET", "api/index", {"dir": str(tmp_path / "nowhere")})
    assert missing.status == 404 and b"dataset folder not found" in missing.body
    index = json.loads(router.handle("GET", "api/index", {"dir": str(copy)}).body)
    assert len(index["entries"]) == len(manifest_rows(copy))


def test_not_a_dataset_folder_is_refused_with_what_was_expected(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="is not a dataset: it has no manifest.jsonl"):
        ReviewApp(tmp_path)
    with pytest.raises(ValueError, match="is a file, not a dataset folder"):
        ReviewApp(tmp_path / "file.txt")
    with pytest.raises(ValueError, match="--only must be one of"):
        ReviewApp(tmp_path, only="some")


def _run_cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "training.dataset", "review", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_bad_input_is_one_line_and_exit_2(copy, tmp_path):
    out = _run_cli(tmp_path)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert "is not a dataset: it has no manifest.jsonl" in out.stderr and "Traceback" not in out.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _run_cli(copy, "--port", port)
    assert out.returncode == 2 and f"--port {port}: cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr


def test_port_in_use_is_a_clear_error(copy):
    app = ReviewApp(copy)
    server = make_server(app, 0)
    try:
        with pytest.raises(PortInUseError, match="pick another port"):
            make_server(app, server.server_address[1])
    finally:
        server.server_close()


def test_cli_serves_on_127_0_0_1_prints_its_address_and_refuses_other_hosts(copy):
    proc = subprocess.Popen([sys.executable, "-m", "training.dataset", "review", str(copy), "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        deadline = time.time() + 60
        while url is None and time.time() < deadline:
            line = proc.stdout.readline()
            if line.startswith("open http://127.0.0.1:"):
                url = line.split()[1]
        assert url, proc.stderr.read()
        index = json.loads(urllib.request.urlopen(url + "api/index", timeout=10).read())
        assert len(index["entries"]) == len(manifest_rows(copy))
        req = urllib.request.Request(url + "api/verdict", data=json.dumps(
            {"id": index["entries"][0]["id"], "verdict": "accept"}).encode(), headers={"Content-Type": "text/plain"})
        with pytest.raises(urllib.error.HTTPError) as err:  # a cross-site form post
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 415
        req = urllib.request.Request(url + "api/index", headers={"Host": "evil.example:80"})
        with pytest.raises(urllib.error.HTTPError) as err:  # DNS rebinding
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 403
        assert not (copy / "reviews.jsonl").exists()
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_scorer_margin_is_computed_on_demand_with_scorer(copy):
    app = ReviewApp(copy, scorer="shapes", device="cpu", load_scorer=load_scorer)  # the shipped shapes scorer (1.4 MB)
    assert app.index()["scorer"] == "shapes"
    status, first = get(app, "api/scorer", i=0)
    assert status == 200 and first["scorer"] == "shapes"
    assert first["margin"] == pytest.approx(first["chosen"] - first["rejected"])
    margins = [get(app, "api/scorer", i=i)[1]["margin"] for i in range(8)]
    assert sum(m > 0 for m in margins) >= 6  # a trained scorer prefers the chosen image of oracle-checked pairs
    assert get(app, "api/scorer", i=0)[1] == first  # kept for the session
    status, body = get(ReviewApp(copy), "api/scorer", i=0)
    assert status == 404 and "--scorer" in body["error"]



def test_a_scorer_whose_rewards_overflow_gives_the_page_one_line(copy, monkeypatch):
    from training.common.finite import NonFiniteScoreError

    app = ReviewApp(copy, scorer="shapes", device="cpu", load_scorer=load_scorer)

    def overflow(*args, **kwargs):
        raise NonFiniteScoreError("the scorer gave NaN or infinite scores for 2 of 2 images")

    monkeypatch.setattr(app.margins.scorer, "score", overflow)
    status, body = get(app, "api/scorer", i=0)
    assert status == 200 and body["error"].startswith("the scorer gave NaN or infinite scores")

class LiveServer:
    """The CLI's HTTP server (make_server) on a free port in a thread; raw requests over http.client or a socket."""

    def __init__(self, app):
        self.server = make_server(app, 0)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def post(self, body: bytes, headers: dict) -> tuple[int, dict, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request("POST", "/api/verdict", body=body, headers=headers)
            r = conn.getresponse()
            raw = r.read()
            return r.status, json.loads(raw), {k.lower(): v for k, v in r.getheaders()} | {"raw": raw}
        finally:
            conn.close()

    def raw(self, head: bytes, body: bytes = b"", timeout: float = 10) -> bytes:
        """Sends `head` (and `body`) without closing the sending side; returns what the server answers."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(head + body)
            answer = b""
            while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
            return answer

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.fixture
def live(copy):
    server = LiveServer(ReviewApp(copy))
    yield server
    server.close()


def _verdict(copy, verdict="swap") -> bytes:
    return json.dumps({"id": manifest_rows(copy)[0]["id"], "verdict": verdict}).encode()


def test_a_verdict_posted_by_another_page_is_refused_and_not_recorded(copy, live):
    own = f"127.0.0.1:{live.port}"
    body = _verdict(copy)
    json_type = {"Content-Type": "application/json"}
    refused = [  # (headers, status): what a page on another origin can make a browser send
        ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403),  # the reproduction
        ({"Origin": "http://evil.example", **json_type}, 403),
        ({"Origin": f"http://127.0.0.1:{live.port + 1}", **json_type}, 403),  # a page on another port
        ({"Origin": f"http://localhost:{live.port}", **json_type}, 403),  # another origin of the same machine
        ({"Origin": "null", **json_type}, 403),  # a sandboxed iframe, a file:// page, a no-referrer form
        ({"Referer": f"http://127.0.0.1:{live.port + 1}/attack.html", **json_type}, 403),
        ({"Sec-Fetch-Site": "same-site", **json_type}, 403),
        ({"Origin": f"http://{own}", "Content-Type": "text/plain"}, 415),
        # what a form or a no-cors fetch can send without Origin (older browsers): never JSON
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Type": "text/plain; charset=application/json"}, 415),  # safelisted, yet names JSON
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 415),
        ({}, 415),
    ]
    for headers, status in refused:
        got, answer, raw = live.post(body, headers)
        assert (got, headers) == (status, headers)
        assert list(answer) == ["error"] and raw["raw"].count(b"\n") == 0
    assert "evil.example" in live.post(body, refused[0][0])[1]["error"]
    assert not (copy / "reviews.jsonl").exists()
    # the page itself (its own Origin, same-origin fetch) and a script without Origin or Referer may post JSON
    page = {"Origin": f"http://{own}", "Referer": f"http://{own}/", "Sec-Fetch-Site": "same-origin", **json_type}
    assert live.post(body, page)[0] == 200
    assert live.post(_verdict(copy, "undo"), {**json_type, "Referer": f"http://{own}/?only=all"})[0] == 200
    assert live.post(_verdict(copy, "accept"), json_type)[0] == 200
    records = [json.loads(x) for x in (copy / "reviews.jsonl").read_text().splitlines()]
    assert [r["verdict"] for r in records] == ["swap", "undo", "accept"]


def test_verdict_fields_of_the_wrong_type_get_one_line_400(copy, live):
    row_id = manifest_rows(copy)[0]["id"]
    cases = [{"id": ["x"], "verdict": "swap"}, {"id": {"a": 1}, "verdict": "swap"}, {"id": row_id, "verdict": ["swap"]},
             {"id": row_id, "verdict": "swap", "reviewer": {"n": 1}}, {"id": None, "verdict": "swap"}]
    for case in cases:
        status, answer, raw = live.post(json.dumps(case).encode(), {"Content-Type": "application/json"})
        assert status == 400 and raw["raw"].count(b"\n") == 0, case
        assert answer["error"].startswith(("\"id\" must be a string", "unknown verdict ['swap']: expected one of",
                                           "\"reviewer\" must be a string")), answer
    status, answer, _ = live.post(b"[" * 60000, {"Content-Type": "application/json"})  # nested past the recursion limit
    assert status == 400 and answer["error"].startswith("the verdict is not JSON")
    assert not (copy / "reviews.jsonl").exists()
    assert live.post(json.dumps({"id": row_id, "verdict": "swap"}).encode(),
                     {"Content-Type": "application/json"})[0] == 200  # the server is still up


def test_a_body_is_never_read_past_its_content_length_or_the_limit(copy, live):
    head = ("POST /api/verdict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            "{extra}\r\n").replace("{port}", str(live.port))
    body = _verdict(copy)

    def answer(extra: str, payload: bytes = b"") -> tuple[int, dict, bytes]:
        t0 = time.monotonic()
        raw = live.raw(head.replace("{extra}", extra).encode(), payload)
        assert time.monotonic() - t0 < 5  # answered at once: the server did not wait for the rest of the body
        status_line, _, rest = raw.partition(b"\r\n")
        headers, _, content = rest.partition(b"\r\n\r\n")
        assert content.count(b"\n") == 0
        return int(status_line.split()[1]), json.loads(content), headers.lower()

    # the sending side stays open after a part of the body: a server that reads to the end of the stream
    # (Content-Length -1) or to the announced size waits until the client gives up
    status, err, headers = answer("Content-Length: -1\r\n", body + b" " * 100_000)
    assert status == 400 and err["error"] == "bad Content-Length: '-1' is not a byte count"
    assert b"connection: close" in headers  # the unread rest is never taken for the next request
    status, err, _ = answer("Content-Length: abc\r\n", body)
    assert status == 400 and "'abc' is not a byte count" in err["error"]
    status, err, _ = answer("Content-Length: 400000000\r\n", body + b" " * 100_000)
    assert status == 413 and err["error"] == "request too large: 400000000 bytes, the limit is 65536"
    status, err, _ = answer(f"Content-Length: {'9' * 5000}\r\n", body)  # past int()'s digit limit
    assert status == 413
    status, err, _ = answer("Transfer-Encoding: chunked\r\n", b"10000\r\n" + b" " * 1000)
    assert status == 411 and "chunked" in err["error"]
    status, err, _ = answer("", b"")  # no Content-Length at all
    assert status == 411
    assert not (copy / "reviews.jsonl").exists()
    status, _, _ = answer(f"Content-Length: {len(body)}\r\n", body)
    assert status == 200 and len((copy / "reviews.jsonl").read_text().splitlines()) == 1


def test_cli_refuses_a_doubt_margin_that_is_not_a_finite_number(copy):
    for value in ("nan", "inf", "-inf"):
        out = _run_cli(copy, f"--doubt-margin={value}", "--port", 0)
        assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
        assert f"--doubt-margin must be a finite number, got {float(value)}" in out.stderr
    with pytest.raises(ValueError, match="--doubt-margin must be a finite number"):
        ReviewApp(copy, doubt_margin=float("nan"))


def test_cli_refuses_a_reviews_file_that_is_a_symbolic_link(copy, tmp_path):
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("someone else's file\n")
    (copy / "reviews.jsonl").symlink_to(foreign)
    out = _run_cli(copy, "--port", 0)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
    assert f"{copy / 'reviews.jsonl'} is a symbolic link: verdicts are never written through a link" in out.stderr
    assert foreign.read_text() == "someone else's file\n"
    # a folder reviewed through ComfyUI's router: refused the same way, as an answer
    router = ReviewRouter()
    refused = router.handle("GET", "api/index", {"dir": str(copy)})
    assert refused.status == 409 and b"is a symbolic link" in refused.body
