"""Durations, webhook options and client options: each bad value gets the documented
error before anything is sent (0 requests in the fake's log), and good values still go
out as the API expects.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from replicate_async import (
    AsyncReplicate,
    InvalidArgumentError,
    PollPolicy,
    RetryPolicy,
    Timeouts,
)
from replicate_async._checks.numbers import MAX_DURATION
from replicate_async.testing import FakeReplicate

# -- durations ------------------------------------------------------------------------------

BAD_CANCEL_AFTER: list[Any] = [
    "99999999999999999999h",
    "9" * 400,
    "9" * 400 + "s",
    1e20,
    10**400,
    timedelta.max,
    MAX_DURATION + 1,
    f"{MAX_DURATION + 1}s",
    "\u0663\u0660s",  # Arabic-Indic digits
    "\uff13\uff10s",  # fullwidth digits
    "30 s",
    "1h5",
    "",
    "s",
    math.nan,
    math.inf,
    -math.inf,
    -30,
    4.99,
    "4s",
]


@pytest.mark.parametrize("value", BAD_CANCEL_AFTER, ids=lambda v: repr(v)[:24])
async def test_cancel_after_out_of_range_or_not_ascii_is_refused(
    replicate_fake: FakeReplicate, value: Any
) -> None:
    """These were sent (``"9"*400`` became inf and passed the >= 5 check; ``timedelta.max``
    got a 201 and then an ``APIResponseValidationError`` while the prediction ran on)."""
    version = replicate_fake.latest_version_id("fake/echo")
    async with replicate_fake.client() as client:
        with pytest.raises(InvalidArgumentError, match="cancel_after"):
            await client.predictions.create(version=version, input={}, cancel_after=value)
    assert replicate_fake.requests == []


@pytest.mark.parametrize(
    ("value", "header"),
    [
        (5, "5s"),
        (5.2, "6s"),
        (timedelta(minutes=2), "120s"),
        ("30", "30"),
        ("1h30m", "1h30m"),
        ("2m3.5s", "2m3.5s"),
        (MAX_DURATION, f"{MAX_DURATION}s"),
        (f"{MAX_DURATION // 3600}h", f"{MAX_DURATION // 3600}h"),
    ],
)
async def test_good_cancel_after_values_are_sent_and_accepted(
    replicate_fake: FakeReplicate, value: Any, header: str
) -> None:
    version = replicate_fake.latest_version_id("fake/echo")
    async with replicate_fake.client() as client:
        await client.predictions.create(version=version, input={}, cancel_after=value)
    [request] = replicate_fake.requests
    assert request.headers["cancel-after"] == header
    assert request.status == 201


Call = Callable[[AsyncReplicate, Any], Awaitable[Any]]


async def _drain(iterator: Any) -> None:
    async for _ in iterator:
        pass


TIMEOUTS: dict[str, Call] = {
    "run timeout": lambda c, t: c.run("fake/echo", input={}, timeout=t),
    "predictions.wait timeout": lambda c, t: c.predictions.wait("p1", timeout=t),
    "stream idle_timeout": lambda c, t: _drain(c.stream("fake/tokens", input={}, idle_timeout=t)),
}


@pytest.mark.parametrize("where", sorted(TIMEOUTS))
@pytest.mark.parametrize(
    "value", [10**400, 1e300, math.nan, math.inf, 0, -1, MAX_DURATION + 1], ids=repr
)
async def test_client_side_durations_are_finite_and_bounded(
    replicate_fake: FakeReplicate, where: str, value: Any
) -> None:
    """``timeout=10**400`` raised a raw ``OverflowError``."""
    async with replicate_fake.client() as client:
        with pytest.raises(InvalidArgumentError, match="timeout"):
            await TIMEOUTS[where](client, value)
    assert replicate_fake.requests == []


# -- webhooks -------------------------------------------------------------------------------

BAD_WEBHOOKS = [
    "https://",
    "https:///path",
    "https://a b/hook",
    "https://example.com/a b",
    "https://example.com/hook\r\nX-Evil: 1",
    "https://example.com/\nhook",
    "https://example.com:99999/hook",
    "https://[::1/hook",
    "ftp://example.com/hook",
    "example.com/hook",
    "https://example.com/" + "a" * 3000,
    "",
]


@pytest.mark.parametrize("url", BAD_WEBHOOKS, ids=lambda u: repr(u)[:30])
async def test_bad_webhook_urls_are_refused_before_sending(
    replicate_fake: FakeReplicate, url: str
) -> None:
    version = replicate_fake.latest_version_id("fake/echo")
    async with replicate_fake.client() as client:
        with pytest.raises(InvalidArgumentError, match="webhook"):
            await client.predictions.create(version=version, input={}, webhook=url)
        with pytest.raises(InvalidArgumentError, match="webhook"):
            await client.trainings.create(
                "fake/echo", version, destination="alice/scratch", input={}, webhook=url
            )
        with pytest.raises(InvalidArgumentError, match="webhook"):
            await client.run("fake/echo", input={}, webhook=url)
    assert replicate_fake.requests == []


async def test_a_webhook_url_of_the_wrong_type_is_a_type_error(
    replicate_fake: FakeReplicate,
) -> None:
    version = replicate_fake.latest_version_id("fake/echo")
    async with replicate_fake.client() as client:
        with pytest.raises(TypeError, match="webhook"):
            await client.predictions.create(version=version, input={}, webhook=b"https://x/h")  # type: ignore[arg-type]
    assert replicate_fake.requests == []


async def test_an_events_filter_without_a_webhook_is_refused(
    replicate_fake: FakeReplicate,
) -> None:
    """It used to be sent, and silently did nothing."""
    version = replicate_fake.latest_version_id("fake/echo")
    async with replicate_fake.client() as client:
        with pytest.raises(InvalidArgumentError, match="needs a webhook"):
            await client.predictions.create(
                version=version, input={}, webhook_events_filter=["completed"]
            )
        with pytest.raises(InvalidArgumentError, match="needs a webhook"):
            await client.deployments.predictions.create(
                "alice/echo-deployment", input={}, webhook_events_filter=["start"]
            )
        with pytest.raises(InvalidArgumentError, match="needs a webhook"):
            await client.trainings.create(
                "fake/echo",
                version,
                destination="alice/scratch",
                input={},
                webhook_events_filter=["completed"],
            )
    assert replicate_fake.requests == []


async def test_good_webhook_options_are_sent(replicate_fake: FakeReplicate) -> None:
    version = replicate_fake.latest_version_id("fake/echo")
    hook = "https://example.com/hooks/replicate?token=abc"
    async with replicate_fake.client() as client:
        await client.predictions.create(
            version=version, input={}, webhook=hook, webhook_events_filter=["completed"]
        )
    [request] = replicate_fake.requests
    assert b'"webhook":"https://example.com/hooks/replicate?token=abc"' in request.body
    assert b'"webhook_events_filter":["completed"]' in request.body


# -- client options -------------------------------------------------------------------------

BAD_OPTIONS: list[Any] = [
    pytest.param({"timeout": 10**400}, InvalidArgumentError, "timeout", id="timeout=10**400"),
    pytest.param({"timeout": math.nan}, InvalidArgumentError, "timeout", id="timeout=nan"),
    pytest.param({"timeout": -1}, InvalidArgumentError, "timeout", id="timeout=-1"),
    pytest.param({"timeout": "10"}, TypeError, "timeout", id="timeout='10'"),
    pytest.param({"session": "x"}, TypeError, "session", id="session='x'"),
    pytest.param({"session": object()}, TypeError, "session", id="session=object()"),
    pytest.param({"poll": "fast"}, TypeError, "poll", id="poll='fast'"),
    pytest.param({"retry": "x"}, TypeError, "retry", id="retry='x'"),
    pytest.param({"max_retries": 1.5}, TypeError, "max_retries", id="max_retries=1.5"),
    pytest.param({"max_retries": True}, TypeError, "max_retries", id="max_retries=True"),
    pytest.param({"max_retries": -1}, InvalidArgumentError, "max_retries", id="max_retries<0"),
    pytest.param({"max_retries": 10**6}, InvalidArgumentError, "max_retries", id="huge"),
    pytest.param({"max_connections": 0}, InvalidArgumentError, "max_connections", id="conn=0"),
    pytest.param({"max_connections": "8"}, TypeError, "max_connections", id="conn='8'"),
    pytest.param({"user_agent": "a\r\nX: y"}, InvalidArgumentError, "user_agent", id="ua CRLF"),
    pytest.param({"user_agent": 5}, TypeError, "user_agent", id="ua=5"),
    pytest.param({"base_url": "https://api.x/v1?x=1"}, InvalidArgumentError, "query", id="query"),
    pytest.param({"base_url": "https://api.x/v1#f"}, InvalidArgumentError, "fragment", id="frag"),
    pytest.param({"base_url": "https:///v1"}, InvalidArgumentError, "host", id="no host"),
    pytest.param({"base_url": "ftp://api.x/v1"}, InvalidArgumentError, "http", id="ftp"),
    pytest.param({"base_url": "https://a b/v1"}, InvalidArgumentError, "whitespace", id="space"),
    pytest.param({"base_url": 5}, TypeError, "base_url", id="base_url=5"),
]


@pytest.mark.parametrize(("options", "error", "words"), BAD_OPTIONS)
def test_bad_client_options_fail_at_construction(
    options: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        AsyncReplicate(api_token="t", **options)


def test_good_client_options_are_kept() -> None:
    client = AsyncReplicate(
        api_token="t",
        base_url="http://127.0.0.1:9/v1/",
        timeout=5,
        max_retries=0,
        poll=PollPolicy(initial=1.0),
        retry=RetryPolicy(backoff_initial=1.0),
        user_agent="my-app/1.0",
    )
    assert client.base_url == "http://127.0.0.1:9/v1"
    assert client.config.timeouts == Timeouts.every(5.0)
    assert client.config.retry.max_retries == 0
    assert client.config.retry.backoff_initial == 1.0
    assert client.config.poll.initial == 1.0
    assert AsyncReplicate(api_token="t", timeout=Timeouts(read=9)).config.timeouts.read == 9


async def test_a_base_url_query_can_no_longer_reach_a_wrong_path(
    replicate_fake: FakeReplicate,
) -> None:
    """``base_url=".../v1?x=1"`` used to send ``GET /v1?x=1/account``."""
    with pytest.raises(InvalidArgumentError):
        AsyncReplicate(api_token=replicate_fake.token, base_url=replicate_fake.base_url + "?x=1")
    assert replicate_fake.requests == []


@pytest.mark.parametrize(
    "token", ["r8_SECRET\r\nX-Evil: 1", "r8_SECRET\x00", "r8_SECRET\n"], ids=["CRLF", "NUL", "LF"]
)
def test_a_token_with_control_characters_is_refused_without_echoing_it(token: str) -> None:
    """It used to fail at the first request with aiohttp's bare ``ValueError``."""
    with pytest.raises(InvalidArgumentError, match="api_token") as info:
        AsyncReplicate(api_token=token)
    assert "SECRET" not in str(info.value)
    assert "SECRET" not in repr(info.value.args)


def test_a_token_of_the_wrong_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="api_token"):
        AsyncReplicate(api_token=b"r8_token")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [10**400, -(10**400), math.nan, math.inf, 0, MAX_DURATION + 1])
@pytest.mark.parametrize("field", ["connect", "read", "total", "pool"])
def test_timeouts_values_are_finite_and_bounded(field: str, value: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=field):
        Timeouts(**{field: value})


@pytest.mark.parametrize("value", ["5", True, [5]], ids=repr)
def test_timeouts_values_of_the_wrong_type_are_type_errors(value: Any) -> None:
    with pytest.raises(TypeError, match="read"):
        Timeouts(read=value)
