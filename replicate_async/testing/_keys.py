"""Typed keys for what the middleware leaves on a request for the handlers.

``web.RequestKey`` exists from aiohttp 3.14 on, where a plain string key raises
``NotAppKeyWarning``; on 3.13 a plain string key is the supported (and silent) form.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

__all__ = ["BODY", "FAULT"]


def _request_key(name: str, kind: type[Any]) -> Any:
    factory = getattr(web, "RequestKey", None)
    return factory(name, kind) if factory is not None else name


#: The body the middleware read (a :class:`~._body.Body`).
BODY: Any = _request_key("replicate_fake_body", object)
#: The fault matched for this request (a :class:`~._faults.Fault`), for streaming handlers.
FAULT: Any = _request_key("replicate_fake_fault", object)
