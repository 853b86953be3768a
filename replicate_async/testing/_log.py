"""The request log: every request the fake received, including the ones it rejected."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ._body import Body
from ._clock import Clock

__all__ = ["REDACTED", "RecordedRequest", "RequestLog", "is_secret", "path_matches"]

REDACTED = "<redacted>"
#: Header and query names that carry credentials: exact names, and any name containing
#: one of the words (``x-api-key``, ``access_token``, ``webhook-signature``, ``sessionid``).
_SECRET_NAMES = frozenset({"cookie", "set-cookie", "code", "sig", "jwt", "bearer"})
_SECRET_WORDS = re.compile(r"auth|token|secret|key|pass|sign|session|credential", re.IGNORECASE)


def is_secret(name: str) -> bool:
    """Whether a header or query parameter named ``name`` may carry a credential."""
    return name.lower() in _SECRET_NAMES or _SECRET_WORDS.search(name) is not None


@dataclass(slots=True)
class RecordedRequest:
    """One request the fake received (recorded even when a fault answered it).

    ``headers`` has lower-cased names; ``query`` keeps the last value of repeated keys;
    ``time`` is the fake's (injectable) clock. ``size`` and ``sha256`` describe the body;
    ``body`` holds its bytes only up to the ``max_recorded_body`` option (an upload is
    kept once, by the file it became, not again here). ``rejected`` says why the fake
    refused the request before any handler ran (a body that never arrived, a malformed
    request line or header...); such requests may have an empty method and path.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    time: float
    fault: bool = False
    status: int | None = None
    """The response status sent (set once the response was produced; ``None`` while in
    flight and when the connection was dropped without an answer). A stream cut by
    ``drop_after_events`` keeps its 200: the headers had been sent."""
    size: int = 0
    sha256: str = ""
    rejected: str | None = None

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary, every credential redacted: ``Authorization``,
        ``Proxy-Authorization``, cookies, API-key and token headers, and query parameters
        whose names say they carry a secret (``token``, ``api_key``, ``signature``...)."""
        headers = {k: (REDACTED if is_secret(k) else v) for k, v in self.headers.items()}
        return {
            "method": self.method,
            "path": self.path,
            "query": {k: (REDACTED if is_secret(k) else v) for k, v in self.query.items()},
            "headers": headers,
            "size": self.size,
            "sha256": self.sha256,
            "body": self.text if self.body else None,
            "time": self.time,
            "fault": self.fault,
            "status": self.status,
            "rejected": self.rejected,
        }


class RequestLog:
    """Appends :class:`RecordedRequest` entries, bounded by the fake's options."""

    def __init__(
        self, clock: Clock, *, enabled: bool, max_requests: int | None, max_body: int
    ) -> None:
        self.clock = clock
        self.enabled = enabled
        self.max_requests = max_requests
        self.max_body = max_body
        self.entries: list[RecordedRequest] = []

    def record(
        self,
        request: web.BaseRequest | None,
        body: Body | None,
        *,
        fault: bool = False,
        rejected: str | None = None,
    ) -> RecordedRequest | None:
        """Log one request (``None`` when recording is off)."""
        if not self.enabled:
            return None
        entry = RecordedRequest(
            method=request.method if request is not None else "",
            path=request.path if request is not None else "",
            query=dict(request.query) if request is not None else {},
            headers=_headers(request),
            body=b"",
            time=self.clock(),
            fault=fault,
            rejected=rejected,
        )
        if body is not None:
            entry.size, entry.sha256 = body.size, body.sha256
            if body.size <= self.max_body:
                entry.body = bytes(body.data)
        self.entries.append(entry)
        if self.max_requests is not None and len(self.entries) > self.max_requests * 2:
            del self.entries[: -self.max_requests]
        return entry

    def matching(self, method: str | None, path: str | None) -> list[RecordedRequest]:
        """Entries matching ``method`` (any if ``None``) and ``path`` (exact or glob)."""
        return [
            req
            for req in self.entries
            if (method is None or req.method == method.upper())
            and (path is None or path_matches(path, req.path))
        ]


def _headers(request: web.BaseRequest | None) -> dict[str, str]:
    if request is None:
        return {}
    return {k.lower(): v for k, v in request.headers.items()}


def path_matches(pattern: str, path: str) -> bool:
    """Whether ``path`` matches ``pattern`` (exact or glob; the ``/v1`` prefix optional)."""
    candidates = (path, path.removeprefix("/v1")) if path.startswith("/v1/") else (path,)
    if any(ch in pattern for ch in "*?["):
        return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)
    return pattern in candidates
