"""Checks for the strings that become part of a request URL, before anything is sent.

- **Path segments** (owner, name, id, version, deployment, file id): a non-empty string
  of at most :data:`MAX_SEGMENT_LENGTH` characters, not ``.`` or ``..``, without ``/``,
  ``\\``, ``%``, whitespace or control characters (``?`` and ``#`` are percent-encoded).
  URL normalisation can never turn one into another endpoint.
- **Model and version references**: ``owner/name`` and ``owner/name:version``, each part a
  path segment.
- **Query values**: non-blank UTF-8 text, and ISO 8601 timestamps.

A bad value raises :class:`~replicate_async.InvalidArgumentError` naming the argument and
what was wrong (the value quoted by :func:`shown`, never in full); a value of the wrong type
raises :class:`TypeError` naming the argument.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from ..exceptions import InvalidArgumentError

__all__ = [
    "MAX_SEGMENT_LENGTH",
    "model_ref",
    "query_text",
    "require_id",
    "segment",
    "shown",
    "split_url",
    "split_version_ref",
    "timestamp",
    "version_ref",
]

#: The longest path segment (an id, owner, model or deployment name) accepted.
MAX_SEGMENT_LENGTH = 256

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_MODEL_REF = re.compile(rf"({_NAME})/({_NAME})")
_VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VERSION_REF = re.compile(rf"({_NAME})/({_NAME}):([A-Za-z0-9][A-Za-z0-9._-]*)")
_SEGMENT_FORBIDDEN = frozenset("/\\%")
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._~:@+-]+").fullmatch


def shown(value: str) -> str:
    """A rejected string as an error message quotes it: at most 40 characters."""
    return repr(value) if len(value) <= 40 else repr(value[:37] + "...")


def split_url(value: str) -> tuple[str, str | None]:
    """A URL's scheme (lower case) and host (``None`` if it has no usable one)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:  # e.g. an unclosed '[' or a bad port
        return "", None
    return parts.scheme.lower(), parts.hostname


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
                f" or control characters), got {shown(value)}"
            )
    return value


def require_id(value: Any, what: str) -> str:
    """An identifier used as a URL path segment: see :func:`segment`."""
    return segment(value, what)


def model_ref(ref: Any, what: str = "model") -> tuple[str, str]:
    """Split ``"owner/name"``, or raise :class:`InvalidArgumentError`/``TypeError``."""
    if not isinstance(ref, str):
        raise TypeError(f"{what} must be an 'owner/name' string, got {type(ref).__name__}")
    match = _MODEL_REF.fullmatch(ref)
    if match is None:
        raise InvalidArgumentError(f"{what} must look like 'owner/name', got {shown(ref)}")
    return segment(match.group(1), f"{what} owner"), segment(match.group(2), f"{what} name")


def split_version_ref(ref: Any) -> tuple[str, str, str | None]:
    """Split ``"owner/name"`` or ``"owner/name:version"`` into its parts."""
    if not isinstance(ref, str):
        raise TypeError(f"model must be a string like 'owner/name[:version]', got {ref!r:.80}")
    return _split_version_ref(ref)


# A script runs the same few models over and over: each ref is checked once (the checks
# are pure; what fails is raised again every time, as lru_cache keeps no exceptions).
@functools.lru_cache(maxsize=256)
def _split_version_ref(ref: str) -> tuple[str, str, str | None]:
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
    _check_version_ref(version)
    return version


@functools.lru_cache(maxsize=256)
def _check_version_ref(version: str) -> None:
    if _VERSION_ID.fullmatch(version):
        segment(version, "version")
        return
    if _VERSION_REF.fullmatch(version) or _MODEL_REF.fullmatch(version):
        split_version_ref(version)
        return
    raise InvalidArgumentError(
        "version must be a version id, 'owner/name:version_id' or 'owner/name', "
        f"got {shown(version)}"
    )


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


def timestamp(value: datetime | str, what: str) -> str:
    """An ISO 8601 query value from a datetime (naive means UTC) or a string."""
    if isinstance(value, str):
        return query_text(value, what)
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime or an ISO 8601 string, got {value!r:.80}")
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    return value.isoformat()
