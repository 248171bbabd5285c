"""The paraphrase client's API key never follows a redirect to another host, and https never downgrades."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from training.dataset.paraphrase import EndpointParaphraser, ParaphraseError, _GuardedRedirects

SEEN: list[dict] = []


class _Target(BaseHTTPRequestHandler):
    def _answer(self):
        SEEN.append({"path": self.path, "auth": self.headers.get("Authorization")})
        body = json.dumps({"choices": [{"message": {"content": "a rewritten prompt"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def _redirector(to: str):
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self):
            SEEN.append({"path": self.path, "auth": self.headers.get("Authorization")})
            self.send_response(302)
            self.send_header("Location", to)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return Redirect


def _serve(handler) -> tuple[HTTPServer, str]:
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def test_the_key_is_not_sent_to_the_host_a_redirect_names():
    SEEN.clear()
    target, target_url = _serve(_Target)
    # "localhost" vs "127.0.0.1": another origin, as an attacker's host would be
    redirect, url = _serve(_redirector(target_url.replace("127.0.0.1", "localhost") + "/elsewhere"))
    try:
        assert EndpointParaphraser(url, api_key="sk-secret", timeout=10)("a cat") == "a rewritten prompt"
    finally:
        target.shutdown()
        redirect.shutdown()
    assert SEEN[0]["auth"] == "Bearer sk-secret"  # the endpoint the user named gets the key
    assert SEEN[1] == {"path": "/elsewhere", "auth": None}  # the host the redirect named does not


def test_a_same_origin_redirect_keeps_the_key():
    SEEN.clear()
    target, target_url = _serve(_Target)
    try:
        handler = _GuardedRedirects()
        req = urllib.request.Request(target_url + "/v1/chat/completions", b"{}", {"Authorization": "Bearer k"},
                                     method="POST")
        new = handler.redirect_request(req, None, 302, "Found", {}, target_url + "/v2/chat/completions")
        assert new.get_header("Authorization") == "Bearer k"
    finally:
        target.shutdown()


def test_https_to_http_downgrade_is_refused():
    handler = _GuardedRedirects()
    req = urllib.request.Request("https://api.example.com/v1/chat/completions", b"{}",
                                 {"Authorization": "Bearer k"}, method="POST")
    with pytest.raises(urllib.error.HTTPError, match="refused a redirect from https to http"):
        handler.redirect_request(req, None, 302, "Found", {}, "http://api.example.com/v1/chat/completions")


def test_a_refused_downgrade_is_a_paraphrase_error(monkeypatch):
    import training.dataset.paraphrase as para

    def opener(req, timeout):
        raise urllib.error.HTTPError(req.full_url, 302, "refused a redirect from https to http", {}, None)

    monkeypatch.setattr(para._OPENER, "open", opener)
    with pytest.raises(ParaphraseError, match="refused a redirect"):
        EndpointParaphraser("https://api.example.com/v1", api_key="k")("a cat")
