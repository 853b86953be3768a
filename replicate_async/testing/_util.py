"""Small shared helpers: timestamps, ids, JSON and problem responses."""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import time
from datetime import datetime
from typing import Any

from aiohttp import web

__all__ = [
    "check_json_value",
    "JSON_CT",
    "ApiError",
    "NS",
    "PROBLEM_CT",
    "dumps",
    "format_ts",
    "json_response",
    "not_found",
    "parse_ts",
    "problem",
]

NS = 1_000_000_000
JSON_CT = "application/json"
PROBLEM_CT = "application/problem+json"


@functools.lru_cache(maxsize=4096)
def _date(days: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(days * 86400))


def format_ts(ns: int, digits: int | None = None) -> str:
    """Format unix nanoseconds as RFC 3339 UTC with a ``Z`` suffix.

    ``digits=None`` mimics Go's ``RFC3339Nano``: nine fractional digits with trailing zeros
    trimmed (so 0 to 9 digits appear, as in the real API); an int gives a fixed width.
    """
    secs, frac = divmod(ns, NS)
    days, rest = divmod(secs, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    base = f"{_date(days)}T{hours:02d}:{minutes:02d}:{seconds:02d}"
    if digits is None:
        text = f"{frac:09d}".rstrip("0")
        return f"{base}.{text}Z" if text else f"{base}Z"
    if digits == 0:
        return f"{base}Z"
    return f"{base}.{f'{frac:09d}'[:digits]}Z"


_TS_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?)?(Z|z|[+-]\d{2}:?\d{2})?$"
)


def parse_ts(text: str) -> int:
    """Parse an ISO 8601 / RFC 3339 date or date-time into unix nanoseconds.

    Accepts any number of fractional digits and a missing offset (taken as UTC).
    Raises :class:`ValueError` on anything else.
    """
    match = _TS_RE.match(text.strip())
    if match is None:
        raise ValueError(f"invalid date-time: {text!r}")
    date, clock, frac, offset = match.groups()
    clock = clock or "00:00:00"
    if len(clock) == 5:
        clock += ":00"
    if offset in (None, "Z", "z"):
        offset = "+00:00"
    elif ":" not in offset:
        offset = f"{offset[:3]}:{offset[3:]}"
    parsed = datetime.fromisoformat(f"{date}T{clock}{offset}")
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return int(parsed.timestamp()) * NS + nanos


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes, as the real API sends.

    Never fails on text: a lone surrogate (rejected on the way in, but a test may store
    one by hand) is written as a ``\\uXXXX`` escape instead of breaking the response.
    """
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode()


def json_response(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """An ``application/json`` response."""
    return web.Response(body=dumps(obj), status=status, content_type=JSON_CT, headers=headers)


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    include_status: bool = True,
    content_type: str = PROBLEM_CT,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    """An RFC 7807-style problem response in Replicate's (inconsistent) shapes."""
    body: dict[str, Any] = {}
    if title is not None:
        body["title"] = title
    body["detail"] = detail
    if include_status:
        body["status"] = status
    body.update(extra)
    return web.Response(body=dumps(body), status=status, content_type=content_type, headers=headers)


def not_found(detail: str = "The requested resource could not be found.") -> web.Response:
    """The generic 404 problem body."""
    return problem(404, detail)


def b64encode(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode()


class ApiError(Exception):
    """Raised by handlers to answer with a ready-made (error) response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def check_json_value(value: Any, max_depth: int) -> str | None:
    """Why ``value`` cannot be stored (too deep, a lone surrogate), or ``None``.

    Iterative, so no input can exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return "a string contains a lone surrogate (not valid Unicode)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "a number is out of range"
        elif isinstance(item, (dict, list)):
            if depth > max_depth:
                return f"JSON nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
