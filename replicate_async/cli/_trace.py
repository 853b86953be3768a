"""``--verbose`` / ``--debug``: each HTTP exchange on stderr, the token never shown.

``--verbose`` prints ``> GET url`` and ``< 200 OK (0.12s)``; ``--debug`` adds the request
and response headers and bodies (the first 2,000 characters of each). ``Authorization``
is always ``Bearer <redacted>``, and the token is replaced wherever else it appears.
"""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from ._output import Output

__all__ = ["redact_headers", "traced_session"]

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_MAX_BODY = 2000


def redact_headers(headers: Any) -> list[tuple[str, str]]:
    """Header pairs with secrets replaced: ``Authorization: Bearer <redacted>``."""
    pairs: list[tuple[str, str]] = []
    for name, value in headers.items():
        if name.lower() in _SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} <redacted>".strip()
        pairs.append((name, value))
    return pairs


def _line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _body(data: bytes, token: str | None, shown: int) -> str:
    """Up to what is left of :data:`_MAX_BODY` characters of a body, token redacted."""
    text = bytes(data[: max(_MAX_BODY - shown, 0)]).decode(errors="replace")
    if token:
        text = text.replace(token, "<redacted>")
    return text + ("…" if len(data) > _MAX_BODY - shown else "")


def traced_session(out: Output, verbosity: int, token: str | None = None) -> aiohttp.ClientSession:
    """A session whose requests are reported on stderr (create it inside the loop)."""
    trace = aiohttp.TraceConfig()

    async def on_start(
        _session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
    ) -> None:
        context.start = time.monotonic()
        out.stop_spinner()
        _line(f"> {params.method} {params.url}")
        if verbosity > 1:
            for name, value in redact_headers(params.headers):
                _line(f"> {name}: {value}")

    async def on_chunk(
        _session: aiohttp.ClientSession, _context: SimpleNamespace, params: Any
    ) -> None:
        if verbosity > 1 and params.chunk:
            _line(f"> {_body(params.chunk, token, 0)}")

    async def on_response_chunk(
        _session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
    ) -> None:
        shown = getattr(context, "shown", 0)
        if verbosity > 1 and params.chunk and shown < _MAX_BODY:
            _line(f"< {_body(params.chunk, token, shown)}")
            context.shown = shown + len(params.chunk)

    async def on_end(
        _session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
    ) -> None:
        response = params.response
        elapsed = time.monotonic() - getattr(context, "start", time.monotonic())
        _line(f"< {response.status} {response.reason or ''} ({elapsed:.2f}s)".replace("  ", " "))
        if verbosity > 1:
            for name, value in redact_headers(response.headers):
                _line(f"< {name}: {value}")

    async def on_error(
        _session: aiohttp.ClientSession, _context: SimpleNamespace, params: Any
    ) -> None:
        _line(f"< {type(params.exception).__name__}: {params.exception}")

    trace.on_request_start.append(on_start)
    trace.on_request_chunk_sent.append(on_chunk)
    trace.on_request_end.append(on_end)
    trace.on_request_exception.append(on_error)
    trace.on_response_chunk_received.append(on_response_chunk)
    return aiohttp.ClientSession(trace_configs=[trace])
