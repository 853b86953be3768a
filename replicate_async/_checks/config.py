"""Checks for the arguments of :class:`~replicate_async.AsyncReplicate` itself.

The base URL, the token and user agent (header text), timeouts, the retry and poll
policies and a caller's own session: each checked once, when the client is built, so a
bad one fails there and not at the first request.
"""

from __future__ import annotations

from typing import Any

import attrs

from .._config import PollPolicy, RetryPolicy, Timeouts
from ..exceptions import InvalidArgumentError
from .numbers import non_negative_int, seconds
from .url import shown, split_url

__all__ = ["base_url", "client_timeouts", "header_text", "poll_policy", "retry_policy", "session"]

_MAX_RETRIES = 100


def base_url(value: Any) -> str:
    """The API base URL: http(s) with a host, no query string, fragment or whitespace;
    returned without a trailing slash."""
    if not isinstance(value, str):
        raise TypeError(f"base_url must be a string, got {type(value).__name__}")
    if any(char.isspace() or not char.isprintable() for char in value):
        raise InvalidArgumentError(f"base_url must not contain whitespace, got {shown(value)}")
    scheme, host = split_url(value)
    if scheme not in ("https", "http") or not host:
        raise InvalidArgumentError(
            f"base_url must be an http(s) URL with a host, got {shown(value)}"
        )
    if "?" in value or "#" in value:
        raise InvalidArgumentError(
            f"base_url must not have a query string or fragment, got {shown(value)}"
        )
    return value.rstrip("/")


def header_text(value: Any, what: str) -> str:
    """Text sent in a header: no CR, LF or other control characters."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}")
    if not value.isprintable():
        raise InvalidArgumentError(f"{what} must not contain control characters")
    return value


def client_timeouts(value: Any) -> Timeouts:
    """``None``, a :class:`~replicate_async.Timeouts`, or a number: every timeout
    (:meth:`Timeouts.every <replicate_async.Timeouts.every>`)."""
    if value is None:
        return Timeouts()
    if isinstance(value, Timeouts):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"timeout must be a Timeouts or a number of seconds, got {value!r:.80}")
    return Timeouts.every(seconds(value, "timeout") or 0.0)


def retry_policy(retry: Any, max_retries: Any) -> RetryPolicy:
    """The :class:`~replicate_async.RetryPolicy`, with ``max_retries`` applied."""
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy, got {retry!r:.80}")
    policy = retry or RetryPolicy()
    if max_retries is None:
        return policy
    count = non_negative_int(max_retries, "max_retries")
    if count > _MAX_RETRIES:
        raise InvalidArgumentError(f"max_retries must be at most {_MAX_RETRIES}, got {count}")
    return attrs.evolve(policy, max_retries=count)


def poll_policy(value: Any) -> PollPolicy | None:
    """``None`` or a :class:`~replicate_async.PollPolicy`."""
    if value is not None and not isinstance(value, PollPolicy):
        raise TypeError(f"poll must be a PollPolicy, got {value!r:.80}")
    return value


def session(value: Any) -> Any:
    """``None`` or an ``aiohttp.ClientSession`` (anything with ``request`` and ``close``)."""
    if value is not None and not (
        callable(getattr(value, "request", None)) and callable(getattr(value, "close", None))
    ):
        raise TypeError(f"session must be an aiohttp.ClientSession, got {type(value).__name__}")
    return value
