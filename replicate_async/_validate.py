"""Argument checks that run before any request is sent.

One rule per kind of argument, applied here and nowhere else:

- **Path segments** (owner, name, id, version, deployment, file id): a non-empty string
  of at most :data:`MAX_SEGMENT_LENGTH` characters, not ``.`` or ``..``, without ``/``,
  ``\\``, ``%``, whitespace or control characters (``?`` and ``#`` are percent-encoded).
  URL normalisation can never turn one into another endpoint.
- **Durations** (``cancel_after``, ``timeout``, ``idle_timeout``...): finite, positive,
  at most :data:`MAX_DURATION` seconds (24 hours); duration strings use ASCII digits only.
- **Inputs**: JSON-representable: no NaN or infinity, no cycles, nested at most
  :data:`MAX_JSON_DEPTH` levels, strings without lone surrogates, integers within 64 bits.

A bad value raises :class:`~replicate_async.InvalidArgumentError` naming the argument and
what was wrong; a value of the wrong type raises :class:`TypeError` naming the argument.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import attrs

from ._config import MAX_DURATION
from ._converter import dumps
from ._jsoninput import MAX_JSON_DEPTH, check_json_input
from .exceptions import InvalidArgumentError

__all__ = [
    "MAX_DURATION",
    "MAX_JSON_DEPTH",
    "MAX_SEGMENT_LENGTH",
    "cancel_after_header",
    "check_input",
    "check_json_input",
    "events_filter",
    "json_body",
    "model_ref",
    "prefer_wait",
    "require_id",
    "segment",
    "version_ref",
    "webhook_url",
]

#: The longest path segment (an id, owner, model or deployment name) accepted.
MAX_SEGMENT_LENGTH = 256
#: The longest webhook URL accepted.
MAX_URL_LENGTH = 2048

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_MODEL_REF = re.compile(rf"({_NAME})/({_NAME})")
_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION_REF = re.compile(rf"({_NAME})/({_NAME}):([A-Za-z0-9][A-Za-z0-9._-]*)")
# The two forms the API takes: bare seconds, or hours/minutes/seconds with units.
_DURATION = re.compile(
    r"(?P<bare>[0-9]+(?:\.[0-9]+)?)|(?:(?P<h>[0-9]+)h)?(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+(?:\.[0-9]+)?)s)?",
    re.ASCII,
)
_MAX_DURATION_TEXT = 32
_MAX_RETRIES = 100
_WEBHOOK_EVENTS = frozenset({"start", "output", "logs", "completed"})
_SEGMENT_FORBIDDEN = frozenset("/\\%")
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~:@+-]+").fullmatch


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 40 else repr(value[:37] + "...")


def segment(value: Any, what: str) -> str:
    """One URL path segment (an id, owner, model or deployment name), checked."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    if _PLAIN_SEGMENT(value) and len(value) <= MAX_SEGMENT_LENGTH and value not in (".", ".."):
        return value  # the common case, decided by one C-level match
    if not value:
        raise InvalidArgumentError(f"{what} must not be empty")
    if value in (".", ".."):
        raise InvalidArgumentError(f"{what} must not be {value!r} (a dot segment)")
    if len(value) > MAX_SEGMENT_LENGTH:
        raise InvalidArgumentError(
            f"{what} is {len(value)} characters long; the limit is {MAX_SEGMENT_LENGTH}"
        )
    for char in value:
        if char in _SEGMENT_FORBIDDEN or char.isspace() or not char.isprintable():
            raise InvalidArgumentError(
                f"{what} must not contain {char!r} (no '/', '\\', '%', whitespace"
                f" or control characters), got {_shown(value)}"
            )
    return value


def model_ref(ref: Any, what: str = "model") -> tuple[str, str]:
    """Split ``"owner/name"``, or raise :class:`InvalidArgumentError`/``TypeError``."""
    if not isinstance(ref, str):
        raise TypeError(f"{what} must be an 'owner/name' string, got {type(ref).__name__}")
    match = _MODEL_REF.fullmatch(ref)
    if match is None:
        raise InvalidArgumentError(f"{what} must look like 'owner/name', got {_shown(ref)}")
    return segment(match.group(1), f"{what} owner"), segment(match.group(2), f"{what} name")


def split_version_ref(ref: Any) -> tuple[str, str, str | None]:
    """Split ``"owner/name"`` or ``"owner/name:version"`` into its parts."""
    if not isinstance(ref, str):
        raise TypeError(f"model must be a string like 'owner/name[:version]', got {ref!r:.80}")
    match = _VERSION_REF.fullmatch(ref)
    if match is not None:
        owner, name = model_ref(f"{match.group(1)}/{match.group(2)}", "model")
        return owner, name, segment(match.group(3), "version")
    owner, name = model_ref(ref, "model")
    return owner, name, None


def version_ref(version: Any) -> str:
    """Check a ``version`` for ``POST /predictions``: an id, ``owner/name:id`` or ``owner/name``."""
    if not isinstance(version, str):
        raise TypeError(f"version must be a string, got {type(version).__name__}")
    if _VERSION_ID.fullmatch(version):
        return segment(version, "version")
    if _VERSION_REF.fullmatch(version) or _MODEL_REF.fullmatch(version):
        split_version_ref(version)
        return version
    raise InvalidArgumentError(
        "version must be a version id, 'owner/name:version_id' or 'owner/name', "
        f"got {_shown(version)}"
    )


def require_id(value: Any, what: str) -> str:
    """An identifier used as a URL path segment: see :func:`segment`."""
    return segment(value, what)


def check_input(value: Any) -> dict[str, Any]:
    """A model input: a mapping with string keys whose values are JSON-representable
    (files anywhere in it are allowed: they are uploaded or inlined later)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"input must be a mapping of input names to values, got {value!r:.80}")
    check_json_input(value, "input")
    return dict(value)


def json_body(body: Mapping[str, Any]) -> bytes:
    """Serialise a request body now, so an unserialisable value fails before sending."""
    try:
        return dumps(body)
    except (TypeError, ValueError, RecursionError) as exc:
        problem = exc
    check_json_input(body, "the request body")  # raises the precise error, naming where
    raise TypeError(f"the request body is not JSON-serialisable: {problem}")


def _split_url(value: str) -> tuple[str, str | None]:
    """A URL's scheme (lower case) and host (``None`` if it has no usable one)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:  # e.g. an unclosed '[' or a bad port
        return "", None
    return parts.scheme.lower(), parts.hostname


def webhook_url(value: Any) -> str:
    """A webhook URL: an absolute http(s) URL with a host (the API requires HTTPS in
    production), without whitespace or control characters."""
    if not isinstance(value, str):
        raise TypeError(f"webhook must be a URL string, got {type(value).__name__}")
    if len(value) > MAX_URL_LENGTH:
        raise InvalidArgumentError(f"webhook is longer than {MAX_URL_LENGTH} characters")
    if any(char.isspace() or not char.isprintable() for char in value):
        raise InvalidArgumentError(
            f"webhook must not contain whitespace or control characters, got {_shown(value)}"
        )
    scheme, host = _split_url(value)
    if scheme not in ("https", "http") or not host:
        raise InvalidArgumentError(
            f"webhook must be an https:// URL with a host, got {_shown(value)}"
        )
    return value


def events_filter(events: Iterable[str] | None, *, webhook: str | None) -> list[str] | None:
    """Check ``webhook_events_filter`` against the events the API knows (and that a
    ``webhook`` is given: a filter without one would be silently ignored)."""
    if events is None:
        return None
    if isinstance(events, str):
        raise TypeError("webhook_events_filter must be a list of event names, not a string")
    if not isinstance(events, Iterable):
        raise TypeError(
            f"webhook_events_filter must be a list of event names, got {type(events).__name__}"
        )
    chosen = list(events)
    unknown = [e for e in chosen if e not in _WEBHOOK_EVENTS]
    if unknown:
        raise InvalidArgumentError(
            f"unknown webhook events {unknown!r:.200}; choose from {sorted(_WEBHOOK_EVENTS)}"
        )
    if webhook is None:
        raise InvalidArgumentError("webhook_events_filter needs a webhook= URL to deliver to")
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
        raise TypeError(f"wait must be True, False, None or an int of seconds, got {wait!r:.80}")
    if not 1 <= wait <= 60:
        raise InvalidArgumentError(f"wait must be between 1 and 60 seconds, got {_number(wait)}")
    return f"wait={wait}", float(wait)


def _duration_text(value: str) -> float:
    match = _DURATION.fullmatch(value) if len(value) <= _MAX_DURATION_TEXT else None
    if not value or match is None:
        raise InvalidArgumentError(
            f"cancel_after must look like '30', '30s', '5m' or '1h30m' (ASCII digits), "
            f"got {_shown(value)}"
        )
    if match.group("bare") is not None:
        return float(match.group("bare"))
    hours, minutes, secs = match.group("h", "m", "s")
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)


def cancel_after_header(value: float | timedelta | str | None) -> str | None:
    """The ``Cancel-After`` header value: 5 seconds to :data:`MAX_DURATION`."""
    if value is None:
        return None
    if isinstance(value, str):
        total = _duration_text(value)
        if not 5 <= total <= MAX_DURATION:
            raise InvalidArgumentError(
                f"cancel_after must be 5 to {MAX_DURATION} seconds, got {_shown(value)}"
            )
        return value
    if isinstance(value, timedelta):
        secs: Any = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"cancel_after must be seconds, a timedelta or a string, got {value!r:.80}")
    else:
        secs = value
    if not 5 <= secs <= MAX_DURATION:  # NaN and infinities fail the comparison too
        raise InvalidArgumentError(
            f"cancel_after must be 5 to {MAX_DURATION} seconds, got {_number(secs)}"
        )
    return f"{math.ceil(secs)}s"


def _number(value: float | int) -> str:
    """A number for a message: never thousands of digits (nor an OverflowError)."""
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"an integer of {value.bit_length()} bits"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def timestamp(value: datetime | str, what: str) -> str:
    """An ISO 8601 query value from a datetime (naive means UTC) or a string."""
    if isinstance(value, str):
        return query_text(value, what)
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime or an ISO 8601 string, got {value!r:.80}")
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    return value.isoformat()


def seconds(value: Any, what: str) -> float | None:
    """An optional positive, finite number of seconds, at most :data:`MAX_DURATION`
    (``None`` means no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__}")
    # Compared without converting (float(10**400) would raise OverflowError); NaN and
    # infinities fail the comparison too.
    if not 0 < value <= MAX_DURATION:
        raise InvalidArgumentError(
            f"{what} must be more than 0 and at most {MAX_DURATION} seconds, got {_number(value)}"
        )
    return float(value)


def non_negative_int(value: Any, what: str) -> int:
    """A count that may be zero."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r:.80}")
    if value < 0:
        raise InvalidArgumentError(f"{what} must be >= 0, got {_number(value)}")
    return value


def base_url(value: Any) -> str:
    """The API base URL: http(s) with a host, no query string, fragment or whitespace;
    returned without a trailing slash."""
    if not isinstance(value, str):
        raise TypeError(f"base_url must be a string, got {type(value).__name__}")
    if any(char.isspace() or not char.isprintable() for char in value):
        raise InvalidArgumentError(f"base_url must not contain whitespace, got {_shown(value)}")
    scheme, host = _split_url(value)
    if scheme not in ("https", "http") or not host:
        raise InvalidArgumentError(
            f"base_url must be an http(s) URL with a host, got {_shown(value)}"
        )
    if "?" in value or "#" in value:
        raise InvalidArgumentError(
            f"base_url must not have a query string or fragment, got {_shown(value)}"
        )
    return value.rstrip("/")


def client_timeouts(value: Any) -> Any:
    """``None``, a :class:`~replicate_async.Timeouts`, or a number: every timeout
    (:meth:`Timeouts.every <replicate_async.Timeouts.every>`)."""
    from ._config import Timeouts

    if value is None:
        return Timeouts()
    if isinstance(value, Timeouts):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"timeout must be a Timeouts or a number of seconds, got {value!r:.80}")
    return Timeouts.every(seconds(value, "timeout") or 0.0)


def retry_policy(retry: Any, max_retries: Any) -> Any:
    """The :class:`~replicate_async.RetryPolicy`, with ``max_retries`` applied."""
    from ._config import RetryPolicy

    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, got {retry!r:.80}")
    policy = retry or RetryPolicy()
    if max_retries is None:
        return policy
    count = non_negative_int(max_retries, "max_retries")
    if count > _MAX_RETRIES:
        raise InvalidArgumentError(f"max_retries must be at most {_MAX_RETRIES}, got {count}")
    return attrs.evolve(policy, max_retries=count)


def session(value: Any) -> Any:
    """``None`` or an ``aiohttp.ClientSession`` (anything with ``request`` and ``close``)."""
    if value is not None and not (
        callable(getattr(value, "request", None)) and callable(getattr(value, "close", None))
    ):
        raise TypeError(f"session must be an aiohttp.ClientSession, got {type(value).__name__}")
    return value


def query_text(value: Any, what: str) -> str:
    """Non-blank text sent in a query string or text body (UTF-8: no lone surrogates)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidArgumentError(f"{what} must not be empty")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{what} contains a lone surrogate") from None
    return value


def positive_int(value: Any, what: str) -> int:
    """A count of at least one."""
    if non_negative_int(value, what) < 1:
        raise InvalidArgumentError(f"{what} must be at least 1, got {value}")
    return int(value)


def header_text(value: Any, what: str) -> str:
    """Text sent in a header: no CR, LF or other control characters."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    if not value.isprintable():
        raise InvalidArgumentError(f"{what} must not contain control characters")
    return value


def poll_policy(value: Any) -> Any:
    """``None`` or a :class:`~replicate_async.PollPolicy`."""
    from ._config import PollPolicy

    if value is not None and not isinstance(value, PollPolicy):
        raise TypeError(f"poll must be a PollPolicy, got {value!r:.80}")
    return value
