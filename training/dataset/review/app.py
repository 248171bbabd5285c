"""The review page's HTTP logic, independent of any server library: `handle(method, path, query, body)` returns a
Response. The stdlib server (`python -m training.dataset review`) and ComfyUI's aiohttp routes are thin adapters
around it, so both serve the very same page and API, and tests call it directly.

Paths are relative to wherever the page is mounted ("/" for the CLI, "/spatialscore/review/" in ComfyUI):
    GET  ""  or "index.html"       the page          GET  static/<file>          its script and style
    GET  api/index                 every pair's compact entry, the standing verdicts, counts, defaults
    GET  api/verdicts              the standing verdicts and counts only (what other tabs changed)
    GET  api/pair?i=N              one pair in full: highlighted prompts, changed relations, automatic verdicts
    GET  api/oracle?i=N            shapes pairs: the pixel oracle re-run on the image files (slower; fetched after)
    GET  api/scorer?i=N            with a scorer (CLI --scorer): its margin on this pair, computed on demand
    GET  img?i=N&side=chosen|rejected   the image file
    POST api/verdict  {"id", "verdict": accept|reject|swap|skip|undo, "reviewer"}
With `dir=<dataset folder>` in the query (ComfyUI), one server reviews any dataset folder the user names.

A verdict changes what training reads, so a POST is taken only from the page itself (`post_refusal`, checked by both
adapters before any body is read): Content-Type application/json (a form or a no-cors fetch from another page cannot
send it without a CORS preflight, which is never granted), and an Origin (or, without one, a Referer) naming this
server's own host:port. A client that sends neither (curl, a script) may post JSON. The body is read only up to
MAX_BODY, and only as long as its Content-Length says (`body_length`).
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..manifest import ManifestError
from .rows import IMAGE_TYPES, ONLY, ReviewRows
from .store import ReviewError, ReviewFileError, VerdictStore, review_counts

STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml"}
MAX_BODY = 64 * 1024


@dataclass
class Response:
    status: int
    content_type: str
    body: bytes
    headers: dict = field(default_factory=dict)


def json_response(value, status: int = 200) -> Response:
    return Response(status, "application/json", json.dumps(value, ensure_ascii=False).encode("utf-8"),
                    {"Cache-Control": "no-store"})


def error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _origin_of(url: str) -> str | None:
    """host[:port] of an http(s) URL, lower case; None for "null", other schemes or what does not parse."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    return parts.netloc.lower() if parts.scheme.lower() in ("http", "https") and parts.netloc else None


def post_refusal(headers) -> Response | None:
    """Why a POST (a verdict) is refused, or None when it may be read. `headers`: the request's headers (any
    mapping with .get, case-insensitive in both servers); the page's own origin is the Host it was asked for.
    403 when a browser says the request comes from another page (Origin, Referer, Sec-Fetch-Site); 415 when the
    body is not declared JSON, which is what a cross-site form or a no-cors fetch sends."""
    own = (headers.get("Host") or "").strip().lower()
    origin, referer = headers.get("Origin"), headers.get("Referer")
    site = (headers.get("Sec-Fetch-Site") or "").strip().lower()
    if origin is not None and _origin_of(origin) != own:
        return error(403, f"verdicts are taken only from the review page at {own or 'this server'}, not from a page "
                          f"of origin {origin.strip()[:100]!r}")
    if origin is None and referer is not None and _origin_of(referer) != own:
        return error(403, f"verdicts are taken only from the review page at {own or 'this server'}, not from a page "
                          f"at {referer.strip()[:100]!r}")
    if site and site != "same-origin":
        return error(403, f"verdicts are taken only from the review page itself (the browser says this request comes "
                          f"from a {site[:20]!r} page)")
    content_type = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return error(415, "verdicts are posted as application/json, " + (f"not {content_type[:60]!r}" if content_type
                                                                         else "and this request names no type"))
    return None


def body_length(content_length: str | None, transfer_encoding: str | None = None) -> int | Response:
    """The byte count a POST announces, or the refusal: a body is read only as far as its Content-Length, and only
    when that is at most MAX_BODY (never to the end of the stream, never a chunked body of unknown size)."""
    if transfer_encoding:
        return error(411, "send the verdict with a Content-Length (chunked bodies are not read)")
    value = (content_length or "").strip()
    if not value:
        return error(411, "a verdict needs a Content-Length")
    if not (value.isascii() and value.isdigit()):  # "abc", "-1", "+1", "1e3", "1, 1"
        return error(400, f"bad Content-Length: {value[:40]!r} is not a byte count")
    length = int(value) if len(value) <= 18 else MAX_BODY + 1
    if length > MAX_BODY:
        return error(413, f"request too large: {value[:40]} bytes, the limit is {MAX_BODY}")
    return length


def static_file(name: str) -> Response:
    path = (STATIC / name).resolve()
    if path.parent != STATIC or path.suffix not in STATIC_TYPES or not path.is_file():
        return error(404, f"no such page file: {name}")
    return Response(200, STATIC_TYPES[path.suffix], path.read_bytes(), {"Cache-Control": "no-cache"})


class ReviewApp:
    """One dataset folder under review: its pairs (read once) and its verdict store (re-read as others append)."""

    def __init__(self, folder, split: str | None = None, only: str = "unreviewed", reviewer: str | None = None,
                 doubt_margin: float = 0.5, scorer: str | None = None, device: str | None = None,
                 load_scorer=None):
        if only not in ONLY:
            raise ValueError(f"--only must be one of {', '.join(ONLY)}, got {only!r}")
        if not isinstance(doubt_margin, (int, float)) or not math.isfinite(doubt_margin):
            raise ValueError(f"--doubt-margin must be a finite number, got {doubt_margin!r}")
        self.rows = ReviewRows(folder, split=split, doubt_margin=doubt_margin)
        self.store = VerdictStore(self.rows.folder)
        self.only, self.reviewer = only, reviewer
        self.margins = None
        if scorer:  # load_scorer: training.reward.load_scorer, from the caller (this stage is below the reward's)
            if load_scorer is None:
                raise ValueError(f"scorer {scorer!r} needs load_scorer= (e.g. training.reward.load_scorer, which "
                                 "`python -m training.dataset review --scorer` passes)")
            from .margins import ScorerMargins

            self.margins = ScorerMargins(scorer, self.rows, load_scorer, device=device)

    @property
    def folder(self) -> Path:
        return self.rows.folder

    def _verdicts(self) -> tuple[dict, dict]:
        fold = self.store.refresh()
        ids = [e["id"] for e in self.rows.entries]
        known = set(ids)
        verdicts = {k: v for k, v in fold.verdicts().items() if k in known}
        return verdicts, review_counts(verdicts, ids)

    def index(self) -> dict:
        verdicts, counts = self._verdicts()
        entries = self.rows.entries
        return {"folder": str(self.folder), "split": self.rows.split or "all", "only": self.only,
                "reviewer": self.reviewer or "", "scorer": self.margins.name if self.margins else None,
                "entries": entries, "verdicts": verdicts, "counts": counts,
                "relations": sorted({p for e in entries for p in e["rel"]}),
                "perturbations": sorted({e["n"] for e in entries if isinstance(e["n"], int)}),
                "bad_manifest_lines": [n for n, _ in self.rows.problems],
                "bad_review_lines": self.store.fold.bad_lines}

    def pair(self, i: int) -> dict:
        details = self.rows.details(i)
        stack = self.store.refresh().stacks.get(details["id"], [])
        return {**details, "verdict": stack[-1]["verdict"] if stack else None, "history": stack[-5:]}

    def image(self, i: int, side: str) -> Response:
        if side not in ("chosen", "rejected"):
            return error(400, f"side must be chosen or rejected, got {side!r}")
        path = self.rows.image_path(self.rows.rows[i], side)
        if path is None:
            return error(404, f"{side} image of pair {self.rows.rows[i]['id']} is missing: "
                              f"{self.rows.rows[i].get(side)!r}")
        return Response(200, IMAGE_TYPES[path.suffix.lower()], path.read_bytes(),
                        {"Cache-Control": "private, max-age=3600"})

    def verdict(self, body: bytes) -> dict:
        try:
            data = json.loads(body or b"{}")
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested too deep
            raise ReviewError(f"the verdict is not JSON: {str(exc)[:200]}") from None
        if not isinstance(data, dict):
            raise ReviewError('expected {"id": ..., "verdict": ...}')
        row_id, verdict, reviewer = data.get("id"), data.get("verdict"), data.get("reviewer")
        if not isinstance(row_id, str):
            raise ReviewError(f'"id" must be a string, got {type(row_id).__name__}: {json.dumps(row_id)[:100]}')
        if reviewer is not None and not isinstance(reviewer, str):
            raise ReviewError(f'"reviewer" must be a string, got {type(reviewer).__name__}')
        if row_id not in self.rows.by_id:
            raise ReviewError(f"no pair with id {row_id[:200]!r} in {self.folder}")
        record = self.store.append(row_id, verdict, reviewer or self.reviewer)
        verdicts, counts = self._verdicts()
        return {"record": record, "verdict": verdicts.get(row_id), "counts": counts}

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes = b"") -> Response:
        path = path.strip("/")
        if method == "GET":
            if path in ("", "index.html"):
                return static_file("index.html")
            if path.startswith("static/"):
                return static_file(path[len("static/"):])
            if path == "api/index":
                return json_response(self.index())
            if path == "api/verdicts":
                verdicts, counts = self._verdicts()
                return json_response({"verdicts": verdicts, "counts": counts})
            if path in ("api/pair", "api/oracle", "api/scorer", "img"):
                try:
                    i = int(query.get("i", ""))
                except ValueError:
                    return error(400, f"i must be a pair number, got {query.get('i')!r}")
                if not 0 <= i < len(self.rows.rows):
                    return error(404, f"no pair number {i} (the dataset has {len(self.rows.rows)})")
                if path == "api/oracle":
                    return json_response(self.rows.live_oracle(i))
                if path == "api/scorer":
                    if self.margins is None:
                        return error(404, "no scorer: start the review with --scorer NAME to compute margins")
                    return json_response(self.margins.margin(i))
                return json_response(self.pair(i)) if path == "api/pair" else self.image(i, query.get("side", ""))
        elif method == "POST" and path == "api/verdict":
            if len(body) > MAX_BODY:
                return error(413, "verdict too large")
            try:
                return json_response(self.verdict(body))
            except ReviewFileError as exc:  # reviews.jsonl itself is wrong (e.g. replaced by a link meanwhile)
                return error(409, str(exc))
            except ReviewError as exc:
                return error(400, str(exc))
        return error(404 if method in ("GET", "POST") else 405, f"no such review route: {method} /{path}")


class ReviewRouter:
    """Many dataset folders behind one server (ComfyUI): the folder comes with each request as `dir`; each folder's
    ReviewApp is built on first use and kept. A fixed `app` (the CLI) ignores `dir`."""

    def __init__(self, app: ReviewApp | None = None, **app_options):
        self.app, self.app_options = app, app_options
        self._apps: dict[str, ReviewApp] = {}
        self._lock = threading.Lock()

    def app_for(self, folder: str | None) -> ReviewApp:
        if self.app is not None:
            return self.app
        if not folder:
            raise ManifestError("name the dataset folder to review (the dir= parameter)")
        key = str(Path(folder).expanduser())
        with self._lock:
            if key not in self._apps:
                self._apps[key] = ReviewApp(key, **self.app_options)
            return self._apps[key]

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes = b"") -> Response:
        stripped = path.strip("/")
        if method == "GET" and (stripped in ("", "index.html") or stripped.startswith("static/")):
            return static_file("index.html" if stripped in ("", "index.html") else stripped[len("static/"):])
        try:
            app = self.app_for(query.get("dir"))
            return app.handle(method, path, query, body)
        except ManifestError as exc:
            return error(400 if not query.get("dir") else 404, str(exc))
        except ReviewFileError as exc:  # the folder's reviews.jsonl is a link or not a file: nothing is written
            return error(409, str(exc))


def parse_query(raw: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
