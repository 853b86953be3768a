"""Make aioresponses 0.7.9 work with aiohttp 3.14.

aiohttp 3.14 added a required ``stream_writer`` argument to ``ClientResponse``, which
aioresponses (upstream #288/#289, unreleased) does not pass. aioresponses builds its
fake responses through the ``ClientResponse`` name in ``aioresponses.core``; this swaps
in a subclass that supplies a stand-in writer reporting zero bytes written.

Limits that remain: mocked bodies over 64 KiB trip an assertion in ``pause_reading``
(upstream #292), so large pages are tested over real sockets against the fake server.
"""

from __future__ import annotations

import inspect
from typing import Any

import aioresponses.core
from aiohttp import ClientResponse


class _FinishedWriter:
    """What ClientResponse reads from a writer whose request was already sent."""

    output_size = 0


class ShimClientResponse(ClientResponse):
    """A ClientResponse that tolerates aioresponses omitting ``stream_writer``."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _FinishedWriter())
        super().__init__(method, url, **kwargs)


def install() -> None:
    """Install the shim when this aiohttp needs it (3.14+); a no-op otherwise."""
    if "stream_writer" in inspect.signature(ClientResponse.__init__).parameters:
        aioresponses.core.ClientResponse = ShimClientResponse  # type: ignore[misc]
