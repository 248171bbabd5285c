"""`python -m training.dataset review DIR`: the review page on a standard-library HTTP server, on 127.0.0.1 only."""

from __future__ import annotations

import errno
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from .app import Response, ReviewApp, ReviewRouter, body_length, error, parse_query, post_refusal

HOST = "127.0.0.1"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


class PortInUseError(OSError):
    """The asked port is taken (another review server, ComfyUI, ...)."""


def make_handler(router: ReviewRouter):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the page's many small requests reuse one connection

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
            response, body = None, b""
            if host not in LOCAL_HOSTS:  # a page on another site that rebinds its DNS to us gets nothing
                response = error(403, f"this review server answers only to {HOST} or localhost, not {host!r}")
            elif method == "POST":
                body = self._read_body()
                if isinstance(body, Response):
                    response, body = body, b""
            if method == "POST" and response is not None:
                self.close_connection = True  # its body was not read: it must not be taken for the next request
            if response is None:
                try:
                    response = router.handle(method, url.path, parse_query(url.query), body)
                except Exception as exc:  # noqa: BLE001 - a bug still answers one line; the server stays up
                    print(f"review server: {method} {url.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    response = error(500, f"internal error: {type(exc).__name__}: {str(exc)[:200]}")
            self.send_response(response.status)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(response.body)

        def _read_body(self) -> bytes | Response:
            """A verdict's body, or why it is refused before a byte of it is read: posted from another page (Origin,
            Referer, Sec-Fetch-Site, Content-Type), or of unknown, malformed or excessive length."""
            refused = post_refusal(self.headers)
            if refused is not None:
                return refused
            length = body_length(", ".join(self.headers.get_all("Content-Length") or []) or None,
                                 self.headers.get("Transfer-Encoding"))
            if isinstance(length, Response):
                return length
            return self.rfile.read(length)

        def do_GET(self):  # noqa: N802 - http.server's naming
            self._serve("GET")

        def do_POST(self):  # noqa: N802
            self._serve("POST")

        def log_message(self, format, *args):  # noqa: A002 - quiet: the terminal shows the address, not each image
            pass

    return Handler


def make_server(app: ReviewApp, port: int = 0) -> ThreadingHTTPServer:
    """A server for `app` on 127.0.0.1:port (0: any free port); raises PortInUseError with a clear message."""
    try:
        server = ThreadingHTTPServer((HOST, port), make_handler(ReviewRouter(app)))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUseError(f"--port {port}: cannot listen on {HOST}:{port} ({exc.strerror}); pick another "
                                 "port, or --port 0 for any free one") from None
        raise
    server.daemon_threads = True
    return server


def serve(app: ReviewApp, port: int = 8765, stream=None) -> None:
    """Serve until Ctrl+C. Every verdict is already on disk when the page shows it, so quitting loses nothing."""
    stream = stream or sys.stdout
    server = make_server(app, port)
    url = f"http://{HOST}:{server.server_address[1]}/"
    index = app.index()
    counts = index["counts"]
    print(f"reviewing {len(index['entries'])} pairs of {app.folder} (split: {index['split']}; "
          f"{counts['reviewed']} reviewed: {counts['accept']} accepted, {counts['reject']} rejected, "
          f"{counts['swap']} swapped)", file=stream)
    print(f"verdicts go to {app.store.path}", file=stream)
    print(f"open {url}  (Ctrl+C to stop)", file=stream, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
