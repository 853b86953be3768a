"""Observability hooks: what the request path tells you about requests, retries, throttling.

Pass ``AsyncReplicate(hooks=Hooks(on_request=..., on_response=..., on_retry=...,
on_throttle=...))``. Each hook is a plain function or a coroutine function taking one
event object. Hooks run in the request's task, in order; one that raises is logged (logger
``replicate_async``) and never breaks the request. With no hooks set the request path does
no extra work.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

import attrs

from ..exceptions import request_id_of

__all__ = [
    "Hooks",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "RetryReason",
    "ThrottleEvent",
]

logger = logging.getLogger("replicate_async")

E = TypeVar("E")
Hook = Callable[[E], Awaitable[None] | None]

RetryReason = Literal["429", "5xx", "408", "timeout", "connection"]
"""Why a request is being sent again."""


@attrs.frozen
class RequestEvent:
    """An attempt is about to go on the wire (``attempt`` 1 is the first)."""

    method: str
    url: str
    kind: Literal["create", "prediction_get", "other"]
    attempt: int


@attrs.frozen
class ResponseEvent:
    """An attempt was answered (any status); ``elapsed`` is seconds on the client's clock."""

    method: str
    url: str
    status: int
    elapsed: float
    attempt: int
    request_id: str | None


@attrs.frozen
class RetryEvent:
    """A failed attempt will be retried after ``wait`` seconds (then queue behind the
    rate limiter); ``error`` is the failure as the SDK raised it."""

    method: str
    url: str
    reason: RetryReason
    wait: float
    attempt: int
    error: BaseException


@attrs.frozen
class ThrottleEvent:
    """A request waited ``wait`` seconds in the client's rate limiter before it was sent."""

    method: str
    url: str
    kind: Literal["create", "prediction_get", "other"]
    wait: float


@attrs.frozen
class Hooks:
    """The client's event hooks (each optional); see the module docstring."""

    on_request: Hook[RequestEvent] | None = None
    on_response: Hook[ResponseEvent] | None = None
    on_retry: Hook[RetryEvent] | None = None
    on_throttle: Hook[ThrottleEvent] | None = None

    def __bool__(self) -> bool:
        return any(
            h is not None
            for h in (self.on_request, self.on_response, self.on_retry, self.on_throttle)
        )


async def emit(hook: Callable[[Any], Any] | None, event: object) -> None:
    """Call ``hook(event)`` (awaiting it if it is a coroutine); log and swallow failures."""
    if hook is None:
        return
    try:
        result = hook(event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("replicate_async hook %r failed on %s", hook, type(event).__name__)


def retry_reason(error: BaseException) -> RetryReason:
    """The :data:`RetryReason` of a retried failure."""
    from ..exceptions import APIStatusError, APITimeoutError

    if isinstance(error, APIStatusError):
        if error.status == 429:
            return "429"
        return "408" if error.status == 408 else "5xx"
    return "timeout" if isinstance(error, APITimeoutError) else "connection"


def response_event(response: Any, attempt: int, elapsed: float) -> ResponseEvent:
    """The :class:`ResponseEvent` of a read response."""
    request_id = request_id_of(response.headers)
    url = response.url.split("?", 1)[0]
    return ResponseEvent(response.method, url, response.status, elapsed, attempt, request_id)
