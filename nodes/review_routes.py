"""Registers the dataset review page on ComfyUI's PromptServer (thin: the logic is nodes/logic/review_routes.py)."""

from __future__ import annotations

from aiohttp import web

from .logic.review_routes import register


def to_aiohttp(response) -> web.Response:
    return web.Response(status=response.status, body=response.body,
                        headers={"Content-Type": response.content_type, **response.headers})


def register_review_routes() -> None:
    from server import PromptServer  # ComfyUI's; imported here so that to_aiohttp is testable without it

    register(PromptServer.instance.routes, to_aiohttp)
