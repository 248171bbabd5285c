"""The dataset review page on ComfyUI's own server (no second server): routes under /spatialscore/review/.

The page, its API and the verdict store are the CLI's (training/dataset/review); this module only turns an
aiohttp request into a `ReviewRouter.handle(method, path, query, body)` call and registers the routes. The
response type is injected (`respond`), so the logic is tested without ComfyUI and without aiohttp. The dataset
folder comes with each request as `dir=` (the folder the user names in the sidebar tab).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from .training_import import import_training

PREFIX = "/spatialscore/review"


def review_router():
    """One router for every dataset folder reviewed through this ComfyUI (each folder's pairs read once)."""
    return import_training("dataset.review.app").ReviewRouter()


def make_handler(router, respond):
    """An aiohttp-style handler: `request` has method, match_info["tail"], query, headers (Host, Origin, Referer,
    Content-Type, Content-Length, ...) and `await read()`."""
    app_module = import_training("dataset.review.app")

    async def handler(request):
        query = dict(request.query)
        body = b""
        if request.method == "POST":
            # ComfyUI's own origin check lets through a request without Origin, "Origin: null", a Referer from
            # another page, and every origin once the server listens on a non-loopback address or sends CORS
            # headers: the page's own rule (same origin, JSON, a bounded Content-Length) is applied here too,
            # before a byte of the body is read
            refused = app_module.post_refusal(request.headers)
            length = app_module.body_length(request.headers.get("Content-Length"),
                                            request.headers.get("Transfer-Encoding"))
            if refused is None and isinstance(length, app_module.Response):
                refused = length
            if refused is not None:
                return respond(refused)
            body = await request.read()
            if len(body) > app_module.MAX_BODY:
                return respond(app_module.error(413, "request too large"))
        tail = request.match_info.get("tail", "")
        # reading a manifest, images and the oracle is blocking file work: keep it off ComfyUI's event loop
        response = await asyncio.get_running_loop().run_in_executor(
            None, router.handle, request.method, tail, query, body)
        return respond(response)

    return handler


def make_redirect(respond):
    """PREFIX without its slash -> PREFIX/ (the page's links are relative), keeping the query (dir=...)."""
    app_module = import_training("dataset.review.app")

    async def redirect(request):
        query = urlencode(dict(request.query))
        location = PREFIX + "/" + (f"?{query}" if query else "")
        return respond(app_module.Response(302, "text/plain", b"", {"Location": location}))

    return redirect


def register(routes, respond, router=None) -> None:
    """Add the review routes to an aiohttp RouteTableDef (ComfyUI's PromptServer.instance.routes)."""
    router = router or review_router()
    handler = make_handler(router, respond)
    routes.get(PREFIX)(make_redirect(respond))
    routes.get(PREFIX + "/{tail:.*}")(handler)
    routes.post(PREFIX + "/{tail:.*}")(handler)
