"""Static types of the request options, hooks and raw responses.

Checked by ``mypy --strict tests/typing`` (every ``assert_type`` must hold) and run by
pytest (the same calls, against nothing but constructors).
"""

from __future__ import annotations

from typing import assert_type

import pytest

from replicate_async import (
    AsyncReplicate,
    Hooks,
    InvalidArgumentError,
    RateLimiter,
    RequestEvent,
    RequestOptions,
    ResponseEvent,
    RetryEvent,
    Throttle,
    ThrottleEvent,
    Timeouts,
)
from replicate_async._core.hooks import RetryReason
from replicate_async._core.raw import RawResponse, RawResponses


def test_request_options_fields() -> None:
    options = RequestOptions(timeout=5, extra_headers={"X": "1"}, max_retries=2)
    assert_type(options.timeout, float | None)
    assert_type(options.max_retries, int | None)
    assert_type(options.merged(RequestOptions(timeout=1)), RequestOptions)


def test_with_options_returns_a_client() -> None:
    client = AsyncReplicate(api_token="t", timeout=30)
    assert_type(client.with_options(timeout=60, extra_query={"a": "b"}), AsyncReplicate)
    assert_type(client.with_raw_response, RawResponses)
    assert_type(Timeouts.every(30), Timeouts)


def test_hooks_take_typed_events() -> None:
    def on_request(event: RequestEvent) -> None:
        assert_type(event.attempt, int)

    async def on_response(event: ResponseEvent) -> None:
        assert_type(event.request_id, str | None)

    def on_retry(event: RetryEvent) -> None:
        assert_type(event.reason, RetryReason)
        assert_type(event.wait, float)

    def on_throttle(event: ThrottleEvent) -> None:
        assert_type(event.wait, float)

    hooks = Hooks(on_request, on_response, on_retry, on_throttle)
    assert_type(hooks, Hooks)


def test_throttle_is_a_rate_limiter() -> None:
    limiter: RateLimiter = Throttle()
    assert isinstance(limiter, RateLimiter)
    assert_type(AsyncReplicate(api_token="t", limiter=limiter), AsyncReplicate)


def test_raw_response_parse_keeps_the_type() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    raw: RawResponse[int] = RawResponse(
        "GET", "u", 200, CIMultiDictProxy(CIMultiDict()), 0.1, 0, 42
    )
    assert_type(raw.parse(), int)
    assert_type(raw.request_id, str | None)


def test_enumerated_parameters_are_literals() -> None:
    """Type checkers reject values outside the API's sets (the ignores below must be
    needed: mypy --strict warns about unused ones); at run time they are refused too."""
    client = AsyncReplicate(api_token="t")
    client.models.list(sort_by="latest_version_created_at", sort_direction="asc")
    with pytest.raises(InvalidArgumentError):
        client.models.list(sort_by="popularity")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        client.predictions.list(source="api")  # type: ignore[arg-type]
