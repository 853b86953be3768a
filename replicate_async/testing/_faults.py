"""Explicit, bounded fault injection: error statuses, slow or broken responses, resets."""

from __future__ import annotations

import asyncio
import email.utils
import fnmatch
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from ._util import JSON_CT, PROBLEM_CT, dumps

__all__ = ["DropConnection", "Fault", "Faults", "deliver", "drop"]

DropConnection = Literal["before_body", "after_body"]


@dataclass(eq=False)
class Fault:
    """One injected fault; it fires on the next ``times`` matching requests.

    - ``path``: exact (``/v1/predictions`` or ``/predictions``) or a glob
      (``/v1/predictions/*``); ``method``: ``None`` matches any.
    - ``status``: answer with this status and a problem+json body instead of the
      handler (429 gets the real throttling body); ``retry_after`` adds a
      ``Retry-After`` header in seconds, or an HTTP date with ``retry_after_date``.
    - ``delay``: seconds to wait before any response headers (slow server).
    - ``slow_body``: seconds to wait between body chunks (not on SSE streams: see
      ``slow_events``).
    - ``drop_connection``: ``"before_body"`` resets without reading or processing the
      request; ``"after_body"`` runs the handler (the request *did* take effect, e.g.
      a prediction was created) and then resets without answering.
    - ``drop_after_events``: SSE streams only (``/v1/streams/*``,
      ``/v1/files/fstream-*``): close the connection, without ending the chunked
      body, once this many events were written on it; the client must resume with
      ``Last-Event-ID``. Other responses are unaffected.
    - ``slow_events``: SSE streams only: seconds to wait between events.
    - ``truncate_body``: declare a longer ``Content-Length`` than sent, then close.
    - ``html_error``: a ``text/html`` ``<html>bad gateway</html>`` (502 by default).
    - ``invalid_json`` / ``empty_body``: a broken JSON body (200 by default).
    - ``body``: a custom body (dict → JSON, str → text, bytes as-is).
    - ``headers``: extra response headers.

    ``hits`` counts how often it fired.
    """

    path: str
    method: str | None = None
    status: int | None = None
    times: int = 1
    retry_after: int | None = None
    retry_after_date: bool = False
    delay: float | None = None
    slow_body: float | None = None
    drop_connection: DropConnection | None = None
    drop_after_events: int | None = None
    slow_events: float | None = None
    truncate_body: bool = False
    html_error: bool = False
    invalid_json: bool = False
    empty_body: bool = False
    body: Any = None
    headers: dict[str, str] | None = None
    hits: int = 0
    _owner: Faults | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._check_types()
        if self.times < 1:
            raise ValueError("times must be at least 1")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status (100-599), got {self.status}")
        if self.drop_connection not in (None, "before_body", "after_body"):
            raise ValueError(f"unknown drop_connection {self.drop_connection!r}")
        if self.drop_after_events is not None and self.drop_after_events < 0:
            raise ValueError("drop_after_events must not be negative")

    def _check_types(self) -> None:
        """Refuse, at once, a field the fake could not use (a ``TypeError`` naming it),
        instead of failing every matching request later with a 500."""
        if not isinstance(self.path, str):
            raise TypeError(
                f"path must be a string (exact or glob), got {type(self.path).__name__}; "
                "pass a fault's fields as keywords: faults.add('/v1/account', status=503)"
            )
        if self.method is not None and not isinstance(self.method, str):
            raise TypeError(f"method must be a string or None, got {type(self.method).__name__}")
        for name in ("status", "times", "retry_after", "drop_after_events"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        for name in ("delay", "slow_body", "slow_events"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise TypeError(f"{name} must be a non-negative number of seconds, got {value!r}")
        for name in ("retry_after_date", "truncate_body", "html_error", "invalid_json"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool")
        if not isinstance(self.empty_body, bool):
            raise TypeError("empty_body must be a bool")
        if self.headers is not None and not (
            isinstance(self.headers, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items())
        ):
            raise TypeError("headers must be a dict of strings")
        if self.body is not None and not isinstance(self.body, bytes | str | dict | list):
            raise TypeError(f"body must be bytes, str, a dict or a list, got {type(self.body)}")

    @property
    def remaining(self) -> int:
        """How many more requests this fault will hit."""
        return max(0, self.times - self.hits)

    @property
    def replaces_response(self) -> bool:
        """Whether the fault answers by itself (the handler never runs)."""
        return (
            self.status is not None
            or self.html_error
            or self.invalid_json
            or self.empty_body
            or self.body is not None
        )

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is targeted (``path`` exact or glob; ``/v1`` prefix optional)."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        candidates = (path, path.removeprefix("/v1")) if path.startswith("/v1/") else (path,)
        if any(ch in self.path for ch in "*?["):
            return any(fnmatch.fnmatchcase(c, self.path) for c in candidates)
        return self.path in candidates

    def remove(self) -> None:
        """Deactivate this fault."""
        if self._owner is not None:
            self._owner.remove(self)

    def make_response(self, now: Callable[[], float]) -> web.Response:
        """The canned response of a response-replacing fault."""
        headers: dict[str, str] = {}
        if self.html_error:
            status = self.status or 502
            resp = web.Response(status=status, body=b"<html>bad gateway</html>")
            resp.content_type = "text/html"
        elif self.invalid_json:
            resp = web.Response(status=self.status or 200, body=b'{"id": "oops", "status": ')
            resp.content_type = JSON_CT
        elif self.empty_body:
            resp = web.Response(status=self.status or 200, body=b"")
            resp.content_type = JSON_CT
        elif self.body is not None:
            status = self.status or 200
            if isinstance(self.body, bytes):
                resp = web.Response(status=status, body=self.body)
            elif isinstance(self.body, str):
                resp = web.Response(status=status, body=self.body.encode())
                resp.content_type = "text/plain"
            else:
                resp = web.Response(status=status, body=dumps(self.body))
                resp.content_type = PROBLEM_CT if status >= 400 else JSON_CT
        else:
            status = self.status or 500
            problem: dict[str, Any] = {
                "detail": f"Injected fault (HTTP {status})",
                "status": status,
            }
            if status == 429:
                wait = self.retry_after or 1
                unit = "second" if wait == 1 else "seconds"
                problem["detail"] = f"Request was throttled. Expected available in {wait} {unit}."
                problem["retry_after"] = wait
            resp = web.Response(status=status, body=dumps(problem))
            resp.content_type = PROBLEM_CT
        if self.retry_after is not None:
            if self.retry_after_date:
                headers["Retry-After"] = email.utils.formatdate(
                    now() + self.retry_after, usegmt=True
                )
            else:
                headers["Retry-After"] = str(self.retry_after)
        resp.headers.update(headers)
        return resp


class Faults:
    """The fault registry (``fake.faults``). Faults are checked in the order added."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, path: str = "*", **spec: Any) -> Fault:
        """Inject a fault for the next ``times`` requests matching ``method`` and ``path``.

        The keyword arguments are the fields of :class:`Fault` (``status``, ``times``,
        ``retry_after``, ``delay``, ``drop_connection``...); an unknown one, or a value of
        the wrong type (a ``Fault`` object as ``path``, a string ``status``...), is a
        :class:`TypeError` here, never a 500 on later requests. Returns the fault
        (``fault.hits``, ``fault.remove()``).
        """
        if isinstance(path, Fault):
            raise TypeError(
                "faults.add() takes a fault's fields, not a Fault: "
                "faults.add('/v1/account', status=503)"
            )
        fault = Fault(path=path, **spec)
        fault._owner = self
        self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        """Deactivate one fault."""
        if fault in self._faults:
            self._faults.remove(fault)

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def __iter__(self) -> Iterator[Fault]:
        return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)

    def take(self, method: str, path: str) -> Fault | None:
        """The first active fault matching the request (consuming one of its ``times``)."""
        for fault in self._faults:
            if fault.matches(method, path):
                fault.hits += 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None


def drop(request: web.BaseRequest) -> web.Response:
    """Abort the connection; the returned response is never sent."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=499)


async def deliver(
    fault: Fault, request: web.BaseRequest, resp: web.StreamResponse
) -> web.StreamResponse:
    """Apply the post-processing parts of a fault (headers, reset, truncation, slowness)."""
    if fault.headers:
        resp.headers.update(fault.headers)
    if fault.drop_connection == "after_body":
        return drop(request)
    if not isinstance(resp, web.Response) or not (fault.truncate_body or fault.slow_body):
        return resp
    body = resp.body if isinstance(resp.body, bytes) else b""
    stream = web.StreamResponse(status=resp.status, reason=resp.reason, headers=resp.headers)
    if fault.truncate_body:
        stream.content_length = len(body) + 64
        await stream.prepare(request)
        await stream.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.close()
        return stream
    stream.content_length = len(body)
    await stream.prepare(request)
    chunk = max(1, len(body) // 4)
    try:
        for start in range(0, len(body), chunk):
            if start:
                await asyncio.sleep(fault.slow_body or 0.0)
            await stream.write(body[start : start + chunk])
        await stream.write_eof()
    except ConnectionError:  # the client gave up on the slow body: fine, and quiet
        pass
    return stream
