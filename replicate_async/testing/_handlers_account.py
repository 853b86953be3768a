"""Handlers: account, hardware and the webhook signing secret."""

from __future__ import annotations

from aiohttp import web

from ._context import CTX
from ._util import json_response

__all__ = ["routes"]


async def get_account(request: web.Request) -> web.Response:
    """GET /v1/account [account.get]"""
    return json_response(request.app[CTX].store.account)


async def list_hardware(request: web.Request) -> web.Response:
    """GET /v1/hardware [hardware.list]: a bare array, not a page."""
    return json_response(request.app[CTX].store.hardware)


async def get_webhook_secret(request: web.Request) -> web.Response:
    """GET /v1/webhooks/default/secret [webhooks.default.secret.get]"""
    return json_response({"key": request.app[CTX].options.webhook_secret})


def routes() -> list[web.RouteDef]:
    """The route table for this module."""
    return [
        web.get("/v1/account", get_account),
        web.get("/v1/hardware", list_hardware),
        web.get("/v1/webhooks/default/secret", get_webhook_secret),
    ]
