"""One line for each error a command can meet: what failed, about what, and what to do."""

from __future__ import annotations

import os
import re
from urllib.parse import unquote, urlsplit

from ..exceptions import (
    APIConnectionError,
    APIStatusError,
    MissingTokenError,
    NotFoundError,
    RateLimitError,
    ReplicateError,
    RequestMayHaveSucceededError,
    UnprocessableEntityError,
)
from ._exits import ERROR, STILL_RUNNING

__all__ = ["describe_error", "exit_status", "not_found_subject"]

_GENERIC_404 = "The requested resource could not be found."
#: ``(path pattern relative to the API root, what it names)``; first match wins.
_SUBJECTS = (
    (r"models/([^/]+/[^/]+)/versions/([^/]+)(/.*)?", "version {1} of model {0}"),
    (r"models/([^/]+/[^/]+)(/.*)?", "model {0}"),
    (r"predictions/([^/]+)(/.*)?", "prediction {0}"),
    (r"trainings/([^/]+)(/.*)?", "training {0}"),
    (r"deployments/([^/]+/[^/]+)(/.*)?", "deployment {0}"),
    (r"files/([^/]+)(/.*)?", "file {0}"),
    (r"collections/([^/]+)", "collection {0}"),
)


def _relative(url: str) -> str:
    """``https://host/v1/predictions/x`` -> ``predictions/x``."""
    parts = unquote(urlsplit(url).path).strip("/").split("/")
    return "/".join(parts[1:] if parts and parts[0] == "v1" else parts)


def not_found_subject(url: str) -> str | None:
    """What a 404 on ``url`` did not find: ``prediction abc``, ``model owner/name``..."""
    relative = _relative(url)
    for pattern, template in _SUBJECTS:
        match = re.fullmatch(pattern, relative)
        if match:
            return template.format(*match.groups())
    return None


def _base_hint(base_url: str | None) -> str:
    if base_url and urlsplit(base_url).path.rstrip("/") != "/v1":
        fixed = base_url.rstrip("/") + "/v1"
        return f"; the base URL {base_url} has no /v1 (did you mean {fixed}?)"
    return ""


def _status_line(exc: APIStatusError, base_url: str | None, subject: str | None) -> str:
    from .._core.errors import reason as _reason

    head = f"{exc.status} {exc.title or _reason(exc.status)}"
    detail = exc.detail or ("" if exc.message in (exc.title, _reason(exc.status)) else exc.message)
    if isinstance(exc, NotFoundError):
        subject = subject or not_found_subject(exc.url)
        what = f"{subject} was not found" if subject else f"nothing at {exc.url}"
        generic = not detail or detail == _GENERIC_404 or detail.rstrip(".").lower() == "not found"
        extra = "" if generic else f" ({detail})"
        return f"{head}: {what}{extra}{_base_hint(base_url)}"
    text = f"{head}: {detail}" if detail else head
    if isinstance(exc, UnprocessableEntityError) and exc.invalid_fields:
        fields = [
            f"{f.get('field', '?')}: {f.get('description', '')}".strip() for f in exc.invalid_fields
        ]
        missing = [f for f in fields if f not in text and f.split(": ", 1)[-1] not in text]
        if missing:
            text = f"{text} ({'; '.join(missing)})"
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        text = f"{text} (retry after {exc.retry_after:g}s)"
    return text


def _os_reason(exc: BaseException) -> str | None:
    """``connection refused``: the OS's words from the error chain, without aiohttp's."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        inner = getattr(current, "os_error", None)
        for candidate in (inner, current):
            if isinstance(candidate, OSError) and (candidate.errno or candidate.strerror):
                text = os.strerror(candidate.errno) if candidate.errno else candidate.strerror
                return (text or "")[:1].lower() + (text or "")[1:]
        current = current.__cause__ or current.__context__
    return None


def _connection_line(exc: APIConnectionError, base_url: str | None) -> str:
    parts = urlsplit(exc.url)
    where = f"{parts.scheme}://{parts.netloc}" if parts.netloc else (base_url or "the API")
    if isinstance(exc, RequestMayHaveSucceededError):
        return (
            f"the connection to {where} was lost after the request was sent: the "
            "prediction may have been created and may be running (see "
            "`replicate-async predictions list --limit 3`)"
        )
    if exc.connect_failed:
        reason = _os_reason(exc) or ("timed out" if "timed out" in exc.message else "failed")
        return f"cannot connect to {where}: {reason} (is the base URL right? --base-url)"
    reason = _os_reason(exc) or exc.message
    return f"lost the connection to {where}: {reason}"


def describe_error(
    exc: BaseException, base_url: str | None = None, *, subject: str | None = None
) -> str:
    """One line for an error, e.g. ``404 Not Found: prediction abc was not found``
    (``subject`` names what a 404 did not find when the URL alone cannot say, e.g.
    ``destination model alice/x``)."""
    if isinstance(exc, MissingTokenError):
        return "no API token: set REPLICATE_API_TOKEN (find it at replicate.com/account)"
    if isinstance(exc, APIStatusError):
        text = _status_line(exc, base_url, subject)
    elif isinstance(exc, APIConnectionError):
        text = _connection_line(exc, base_url)
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def exit_status(exc: ReplicateError) -> int:
    """3 when something may still be running behind the error (a create whose answer was
    lost), else 1."""
    return STILL_RUNNING if isinstance(exc, RequestMayHaveSucceededError) else ERROR
