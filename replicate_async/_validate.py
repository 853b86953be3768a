"""Argument checks that run before any request is sent."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ._converter import dumps

__all__ = [
    "cancel_after_header",
    "check_input",
    "events_filter",
    "json_body",
    "model_ref",
    "prefer_wait",
    "require_id",
    "version_ref",
    "webhook_url",
]

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_MODEL_REF = re.compile(rf"({_NAME})/({_NAME})")
_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION_REF = re.compile(rf"({_NAME})/({_NAME}):([A-Za-z0-9][A-Za-z0-9._-]*)")
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?")
_WEBHOOK_EVENTS = frozenset({"start", "output", "logs", "completed"})


def model_ref(ref: Any, what: str = "model") -> tuple[str, str]:
    """Split ``"owner/name"``, or raise a clear ``ValueError``/``TypeError``."""
    if not isinstance(ref, str):
        raise TypeError(f"{what} must be an 'owner/name' string, got {type(ref).__name__}")
    match = _MODEL_REF.fullmatch(ref)
    if match is None:
        raise ValueError(f"{what} must look like 'owner/name', got {ref!r}")
    return match.group(1), match.group(2)


def split_version_ref(ref: Any) -> tuple[str, str, str | None]:
    """Split ``"owner/name"`` or ``"owner/name:version"`` into its parts."""
    if not isinstance(ref, str):
        raise TypeError(f"model must be a string like 'owner/name[:version]', got {ref!r}")
    match = _VERSION_REF.fullmatch(ref)
    if match is not None:
        return match.group(1), match.group(2), match.group(3)
    owner, name = model_ref(ref, "model")
    return owner, name, None


def version_ref(version: Any) -> str:
    """Check a ``version`` for ``POST /predictions``: an id, ``owner/name:id`` or ``owner/name``."""
    if not isinstance(version, str):
        raise TypeError(f"version must be a string, got {type(version).__name__}")
    if (
        _VERSION_ID.fullmatch(version)
        or _VERSION_REF.fullmatch(version)
        or _MODEL_REF.fullmatch(version)
    ):
        return version
    raise ValueError(
        f"version must be a version id, 'owner/name:version_id' or 'owner/name', got {version!r}"
    )


def require_id(value: Any, what: str) -> str:
    """A non-empty identifier string (path segments are encoded by the caller)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    if not value or value.strip() != value or "/" in value:
        raise ValueError(f"{what} must be a non-empty id without slashes, got {value!r}")
    return value


def check_input(value: Any) -> dict[str, Any]:
    """A model input must be a mapping with string keys."""
    if not isinstance(value, Mapping):
        raise TypeError(f"input must be a mapping of input names to values, got {value!r:.80}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"input names must be strings, got {key!r}")
    return dict(value)


def json_body(body: Mapping[str, Any]) -> bytes:
    """Serialise a request body now, so an unserialisable value fails before sending."""
    try:
        return dumps(body)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the request body is not JSON-serialisable: {exc}") from exc


def webhook_url(value: Any) -> str:
    """A webhook URL: an absolute http(s) URL (the API requires HTTPS in production)."""
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise ValueError(f"webhook must be an https:// URL, got {value!r:.80}")
    return value


def events_filter(events: Iterable[str] | None) -> list[str] | None:
    """Check ``webhook_events_filter`` against the events the API knows."""
    if events is None:
        return None
    if isinstance(events, str):
        raise TypeError("webhook_events_filter must be a list of event names, not a string")
    chosen = list(events)
    unknown = [e for e in chosen if e not in _WEBHOOK_EVENTS]
    if unknown:
        raise ValueError(
            f"unknown webhook events {unknown!r}; choose from {sorted(_WEBHOOK_EVENTS)}"
        )
    return chosen


def prefer_wait(wait: bool | int | None) -> tuple[str | None, float | None]:
    """The ``Prefer`` header value and the seconds the server may hold the request.

    ``True`` waits the server's maximum (60 s), an int 1-60 that many seconds;
    ``None``/``False`` does not wait.
    """
    if wait is None or wait is False:
        return None, None
    if wait is True:
        return "wait", 60.0
    if not isinstance(wait, int):
        raise TypeError(f"wait must be True, False, None or an int of seconds, got {wait!r}")
    if not 1 <= wait <= 60:
        raise ValueError(f"wait must be between 1 and 60 seconds, got {wait}")
    return f"wait={wait}", float(wait)


def cancel_after_header(value: float | timedelta | str | None) -> str | None:
    """The ``Cancel-After`` header value (the API's minimum is 5 seconds)."""
    if value is None:
        return None
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if not value or match is None:
            raise ValueError(f"cancel_after must look like '30s', '5m' or '1h30m', got {value!r}")
        hours, minutes, seconds = match.groups()
        total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
        if total < 5:
            raise ValueError(f"cancel_after must be at least 5 seconds, got {value!r}")
        return value
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"cancel_after must be seconds, a timedelta or a string, got {value!r}")
    if not math.isfinite(seconds) or seconds < 5:
        raise ValueError(f"cancel_after must be at least 5 seconds, got {seconds}")
    return f"{math.ceil(seconds)}s"


def timestamp(value: datetime | str, what: str) -> str:
    """An ISO 8601 query value from a datetime (naive means UTC) or a string."""
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime or an ISO 8601 string, got {value!r}")
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    return value.isoformat()


def seconds(value: Any, what: str) -> float | None:
    """An optional positive, finite number of seconds (``None`` means no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive, finite number of seconds, got {value!r}")
    return float(value)


def non_negative_int(value: Any, what: str) -> int:
    """A count that may be zero."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")
    return value


def poll_policy(value: Any) -> Any:
    """``None`` or a :class:`~replicate_async.PollPolicy`."""
    from ._config import PollPolicy

    if value is not None and not isinstance(value, PollPolicy):
        raise TypeError(f"poll must be a PollPolicy, got {value!r}")
    return value
