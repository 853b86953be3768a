"""The fake's one middleware: faults, the body read, the request log, auth, rate limits,
and the rule that no request ever gets an unexplained 5xx."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ._body import read_body
from ._clock import Clock
from ._faults import Fault, Faults, deliver, drop
from ._keys import BODY, FAULT
from ._log import RecordedRequest, RequestLog
from ._options import FakeOptions
from ._ratelimit import TokenBucket
from ._util import ApiError, problem

__all__ = ["Gate", "Limits"]

logger = logging.getLogger("replicate_async.testing")

_CREATE_RE = re.compile(
    r"^/v1/(?:predictions|models/[^/]+/[^/]+/predictions|deployments/[^/]+/[^/]+/predictions)$"
)
_UNAUTH_RE = re.compile(
    r"^(?:/v1/search|/v1/streams/.*|/v1/files/fstream-.*|/v1/files/[^/]+/download|/delivery/.*)$"
)
_UNLIMITED_RE = re.compile(r"^(?:/v1/streams/.*|/v1/files/fstream-.*|/delivery/.*)$")
#: The fake's own read-only endpoints (not recorded, not rate limited).
INSPECT_PREFIX = "/_fake/"


@dataclass(slots=True)
class Limits:
    """The two token buckets and whether they are enforced."""

    create: TokenBucket
    other: TokenBucket
    enabled: bool = False
    extra: dict[str, str] = field(default_factory=dict)


class Gate:
    """Everything between aiohttp and a handler."""

    def __init__(self, options: FakeOptions, clock: Clock, faults: Faults, log: RequestLog) -> None:
        self.options = options
        self.clock = clock
        self.faults = faults
        self.log = log
        self.server_errors: list[BaseException] = []
        self.limits = Limits(
            TokenBucket(options.create_limit_per_minute, clock, options.create_burst),
            TokenBucket(options.other_limit_per_minute, clock, options.other_burst),
            enabled=options.rate_limits_enabled,
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Record, read the body, apply faults, then dispatch (aiohttp middleware)."""
        if request.path.startswith(INSPECT_PREFIX):
            resp: web.StreamResponse = await handler(request)
            return resp
        fault = self.faults.take(request.method, request.path) if len(self.faults) else None
        if fault is not None and fault.drop_connection == "before_body":
            self.log.record(request, None, fault=True)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            return drop(request)
        try:
            record, resp = await self._read_and_respond(request, handler, fault)
        except ConnectionError:
            # The client went away mid-response: nothing more to send, nothing to log.
            return drop(request)
        if record is not None and (fault is None or fault.drop_connection is None):
            record.status = resp.status
        return resp

    async def _read_and_respond(
        self, request: web.Request, handler: Any, fault: Fault | None
    ) -> tuple[RecordedRequest | None, web.StreamResponse]:
        options = self.options
        try:
            body = await read_body(
                request, limit=options.max_file_size + 1024 * 1024, timeout=options.body_timeout
            )
        except ApiError as exc:
            rejected = _detail(exc.response)
            record = self.log.record(request, None, fault=fault is not None, rejected=rejected)
            resp = exc.response
            resp.force_close()
            if resp.status == 408:  # nothing more is coming: answer, then hang up at once
                await resp.prepare(request)
                await resp.write_eof()
                if request.transport is not None:
                    request.transport.close()
            return record, resp
        request[BODY] = body
        record = self.log.record(request, body, fault=fault is not None)
        return record, await self._respond(request, handler, fault)

    async def _respond(
        self, request: web.Request, handler: Any, fault: Fault | None
    ) -> web.StreamResponse:
        if fault is None:
            return await self._dispatch(request, handler)
        request[FAULT] = fault
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.replaces_response:
            return await deliver(fault, request, fault.make_response(self.clock))
        return await deliver(fault, request, await self._dispatch(request, handler))

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        return scheme.lower() in ("bearer", "token") and credentials.strip() == self.options.token

    def _throttle(self, request: web.Request) -> tuple[web.Response | None, dict[str, str]]:
        path = request.path
        if not path.startswith("/v1/") or _UNLIMITED_RE.match(path):
            return None, {}
        is_create = request.method == "POST" and _CREATE_RE.match(path) is not None
        bucket = self.limits.create if is_create else self.limits.other
        allowed, remaining, retry_after = bucket.take()
        if not allowed and self.limits.enabled:
            unit = "second" if retry_after == 1 else "seconds"
            limited = problem(
                429,
                f"Request was throttled. Expected available in {retry_after} {unit}.",
                retry_after=retry_after,
                headers={
                    "Retry-After": str(retry_after),
                    "ratelimit-remaining": "0",
                    "ratelimit-reset": str(retry_after),
                },
            )
            return limited, {}
        return None, {"ratelimit-remaining": str(remaining), "ratelimit-reset": "1"}

    async def _dispatch(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if (
            self.options.require_auth
            and not _UNAUTH_RE.match(request.path)
            and not self._authorized(request)
        ):
            return problem(
                401, "You did not pass a valid authentication token", title="Unauthenticated"
            )
        limited, headers = self._throttle(request)
        if limited is not None:
            return limited
        resp = await self._call(request, handler)
        if not resp.prepared:
            resp.headers.update(headers)
        return resp

    async def _call(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            resp: web.StreamResponse = await handler(request)
        except ApiError as exc:
            resp = exc.response
        except web.HTTPException as exc:
            resp = problem(exc.status, exc.reason)
            if "Allow" in exc.headers:
                resp.headers["Allow"] = exc.headers["Allow"]
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:
            logger.exception(
                "fake Replicate handler failed for %s %s", request.method, request.path
            )
            self.server_errors.append(exc)
            resp = problem(500, "Internal server error")
        return resp


def _detail(resp: web.Response) -> str:
    """The ``detail`` of a problem response (what the log says a rejection was)."""
    try:
        detail = json.loads(resp.body if isinstance(resp.body, bytes) else b"")["detail"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {resp.status}"
    return str(detail)
