"""The retry matrix (status x method), Retry-After handling, backoff, and the pure helpers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from unittest.mock import Mock

import aiohttp
import pytest
from aioresponses import aioresponses
from multidict import CIMultiDict

from replicate_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncReplicate,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    RequestMayHaveSucceededError,
    RetryPolicy,
)
from replicate_async._core.retry import is_retryable, parse_retry_after, retry_delay
from replicate_async.testing import ManualClock
from tests.helpers import example

from ._helpers import API, TOKEN, multipart_parts, request_count, sent_all

VERSION = "a" * 64
PRED = f"{API}/predictions/abc"
RETRY_STATUSES = [500, 502, 503, 504, 408]


def _refused() -> aiohttp.ClientConnectorError:
    key = Mock(host="api.replicate.com", port=443, is_ssl=True, ssl=True)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))


# -- idempotent operations: (method, url, call, mock-success kwargs) ---------------------

Call = Callable[[AsyncReplicate], Awaitable[Any]]


async def _search(client: AsyncReplicate) -> Any:
    return await client.models.search("llama")


IDEMPOTENT: list[tuple[str, str, Call, dict[str, Any]]] = [
    (
        "GET",
        PRED,
        lambda c: c.predictions.get("abc"),
        {"payload": example("prediction-get-processing")},
    ),
    ("QUERY", f"{API}/models", _search, {"payload": example("page-models-search-query-TRUNCATED")}),
    ("DELETE", f"{API}/files/f1", lambda c: c.files.delete("f1"), {"status": 204, "body": b""}),
    (
        "PATCH",
        f"{API}/models/a/b",
        lambda c: c.models.update("a/b", description="d"),
        {"payload": example("model-get-no-versions")},
    ),
    (
        "POST",
        f"{API}/predictions/abc/cancel",
        lambda c: c.predictions.cancel("abc"),
        {"payload": example("prediction-cancel-canceled")},
    ),
    (
        "POST",
        f"{API}/trainings/t1/cancel",
        lambda c: c.trainings.cancel("t1"),
        {"payload": example("training-cancel-canceled")},
    ),
]
IDEMPOTENT_IDS = ["GET", "QUERY", "DELETE", "PATCH", "predictions.cancel", "trainings.cancel"]

CREATED = example("prediction-create-async-starting")
CREATES: list[tuple[str, Call, dict[str, Any]]] = [
    (
        f"{API}/predictions",
        lambda c: c.predictions.create(version=VERSION, input={}),
        {"status": 201, "payload": CREATED},
    ),
    (
        f"{API}/models/a/b/predictions",
        lambda c: c.models.predictions.create("a/b", input={}),
        {"status": 201, "payload": CREATED},
    ),
    (
        f"{API}/deployments/a/b/predictions",
        lambda c: c.deployments.predictions.create("a/b", input={}),
        {"status": 201, "payload": CREATED},
    ),
    (
        f"{API}/models/a/b/versions/{VERSION}/trainings",
        lambda c: c.trainings.create("a/b", VERSION, destination="me/x", input={}),
        {"status": 201, "payload": example("training-create-starting")},
    ),
    (
        f"{API}/models",
        lambda c: c.models.create("me", "x", visibility="private", hardware="cpu"),
        {"status": 201, "payload": example("model-create-201")},
    ),
    (
        f"{API}/deployments",
        lambda c: c.deployments.create(
            name="d", model="a/b", version=VERSION, hardware="cpu", min_instances=0, max_instances=1
        ),
        {"payload": example("deployment-get")},
    ),
    (
        f"{API}/files",
        lambda c: c.files.create(b"data"),
        {"status": 201, "payload": example("file-create-201")},
    ),
]
CREATE_IDS = [
    "predictions.create",
    "models.predictions.create",
    "deployments.predictions.create",
    "trainings.create",
    "models.create",
    "deployments.create",
    "files.create",
]


def _mock(mocked: aioresponses, method: str, url: str, **kwargs: Any) -> None:
    mocked.add(url, method=method, **kwargs)


def _waited_retry_after(wait: float, asked: float) -> bool:
    """A 429's wait: what the server asked, plus a jitter of at most min(1 s, 10 %)."""
    return asked <= wait <= asked + min(1.0, asked / 10)


@pytest.mark.parametrize("status", RETRY_STATUSES)
@pytest.mark.parametrize(("method", "url", "call", "ok"), IDEMPOTENT, ids=IDEMPOTENT_IDS)
async def test_idempotent_retried_on_status(
    client: AsyncReplicate,
    mocked: aioresponses,
    clock: ManualClock,
    method: str,
    url: str,
    call: Call,
    ok: dict[str, Any],
    status: int,
) -> None:
    """GET/QUERY/DELETE/PATCH and cancels are retried on 5xx/408, then succeed."""
    _mock(mocked, method, url, status=status, payload={"detail": "oops"})
    _mock(mocked, method, url, **ok)
    await call(client)
    calls = sent_all(mocked, method, url)
    assert len(calls) == 2
    assert calls[0].headers == calls[1].headers
    assert calls[0].data == calls[1].data
    assert len(clock.slept) == 1
    assert client.stats["requests"] == 2
    assert client.stats["retries"] == 1


@pytest.mark.parametrize(
    "exc_factory",
    [
        asyncio.TimeoutError,
        aiohttp.ServerDisconnectedError,
        lambda: aiohttp.ClientOSError(104, "reset"),
        _refused,
    ],
    ids=["timeout", "disconnected", "reset", "refused"],
)
@pytest.mark.parametrize(("method", "url", "call", "ok"), IDEMPOTENT, ids=IDEMPOTENT_IDS)
async def test_idempotent_retried_on_transport_errors(
    client: AsyncReplicate,
    mocked: aioresponses,
    clock: ManualClock,
    method: str,
    url: str,
    call: Call,
    ok: dict[str, Any],
    exc_factory: Callable[[], BaseException],
) -> None:
    """Idempotent requests are retried on timeouts, disconnects, resets and refusals."""
    _mock(mocked, method, url, exception=exc_factory())
    _mock(mocked, method, url, exception=exc_factory())
    _mock(mocked, method, url, **ok)
    await call(client)
    assert len(sent_all(mocked, method, url)) == 3
    assert len(clock.slept) == 2
    assert client.stats["retries"] == 2


@pytest.mark.parametrize("status", RETRY_STATUSES)
@pytest.mark.parametrize(("url", "call", "ok"), CREATES, ids=CREATE_IDS)
async def test_create_not_retried_on_status(
    client: AsyncReplicate,
    mocked: aioresponses,
    clock: ManualClock,
    url: str,
    call: Call,
    ok: dict[str, Any],
    status: int,
) -> None:
    """A POST create is never resent after 5xx/408: it may have been created."""
    mocked.post(url, status=status, payload={"detail": "upstream"})
    mocked.post(url, **ok)
    with pytest.raises(APIStatusError) as info:
        await call(client)
    assert info.value.status == status
    assert len(sent_all(mocked, "POST", url)) == 1
    assert clock.slept == []
    assert client.stats["retries"] == 0


@pytest.mark.parametrize(
    "exc_factory",
    [
        asyncio.TimeoutError,
        aiohttp.ServerDisconnectedError,
        lambda: aiohttp.ClientPayloadError("cut"),
        aiohttp.SocketTimeoutError,
    ],
    ids=["timeout", "disconnected", "payload", "read-timeout"],
)
@pytest.mark.parametrize(("url", "call", "ok"), CREATES, ids=CREATE_IDS)
async def test_create_lost_response_not_retried(
    client: AsyncReplicate,
    mocked: aioresponses,
    clock: ManualClock,
    url: str,
    call: Call,
    ok: dict[str, Any],
    exc_factory: Callable[[], BaseException],
) -> None:
    """A create whose answer was lost raises RequestMayHaveSucceededError after one send;
    when it timed out, the error is an APITimeoutError too (catching either works)."""
    mocked.post(url, exception=exc_factory())
    mocked.post(url, **ok)
    with pytest.raises(RequestMayHaveSucceededError) as info:
        await call(client)
    assert info.value.__cause__ is not None
    timed_out = isinstance(info.value.__cause__, TimeoutError)
    assert isinstance(info.value, APITimeoutError) is timed_out
    assert len(sent_all(mocked, "POST", url)) == 1
    assert clock.slept == []


@pytest.mark.parametrize(("url", "call", "ok"), CREATES, ids=CREATE_IDS)
async def test_create_retried_on_429(
    client: AsyncReplicate,
    mocked: aioresponses,
    clock: ManualClock,
    url: str,
    call: Call,
    ok: dict[str, Any],
) -> None:
    """A throttled create was not processed, so it is resent: exactly two requests."""
    mocked.post(
        url, status=429, payload=example("error-429-throttled-docs"), headers={"Retry-After": "1"}
    )
    mocked.post(url, **ok)
    await call(client)
    calls = sent_all(mocked, "POST", url)
    assert len(calls) == 2
    assert calls[0].headers == calls[1].headers
    assert _waited_retry_after(clock.slept[0], 1.0)
    assert client.stats["retries"] == 1


@pytest.mark.parametrize(
    "exc_factory",
    [_refused, lambda: aiohttp.ConnectionTimeoutError("connect timed out")],
    ids=["refused", "connect-timeout"],
)
@pytest.mark.parametrize(("url", "call", "ok"), CREATES, ids=CREATE_IDS)
async def test_create_retried_when_connection_never_opened(
    client: AsyncReplicate,
    mocked: aioresponses,
    clock: ManualClock,
    url: str,
    call: Call,
    ok: dict[str, Any],
    exc_factory: Callable[[], BaseException],
) -> None:
    """A create whose connection never opened provably was not sent: it is retried."""
    mocked.post(url, exception=exc_factory())
    mocked.post(url, **ok)
    await call(client)
    assert len(sent_all(mocked, "POST", url)) == 2
    assert len(clock.slept) == 1


async def test_create_body_identical_on_retry(client: AsyncReplicate, mocked: aioresponses) -> None:
    """The resent create carries the same JSON body and Prefer/Cancel-After headers."""
    url = f"{API}/predictions"
    mocked.post(url, status=429, payload={"detail": "slow down"}, headers={"Retry-After": "0"})
    mocked.post(url, status=201, payload=CREATED)
    await client.predictions.create(version=VERSION, input={"p": 1}, wait=5, cancel_after=60)
    first, second = sent_all(mocked, "POST", url)
    assert first.json() == second.json() == {"version": VERSION, "input": {"p": 1}}
    assert first.headers["Prefer"] == second.headers["Prefer"] == "wait=5"
    assert first.headers["Cancel-After"] == second.headers["Cancel-After"] == "60s"


async def test_files_create_rebuilds_multipart_on_retry(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A retried upload sends a fresh, complete multipart body each attempt."""
    url = f"{API}/files"
    mocked.post(url, exception=_refused())
    mocked.post(url, status=201, payload=example("file-create-201"))
    await client.files.create(b"payload-bytes", filename="a.bin")
    calls = sent_all(mocked, "POST", url)
    assert len(calls) == 2
    assert calls[0].data is not calls[1].data
    for call in calls:
        _, parts = await multipart_parts(call.data)
        assert parts[0].body == b"payload-bytes"


async def test_streamed_upload_not_retried(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """An async-iterable upload cannot be replayed, so even a 429 is not retried."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"
        yield b"b"

    url = f"{API}/files"
    mocked.post(url, status=429, payload={"detail": "slow"}, headers={"Retry-After": "1"})
    mocked.post(url, status=201, payload=example("file-create-201"))
    with pytest.raises(RateLimitError):
        await client.files.create(chunks())
    assert len(sent_all(mocked, "POST", url)) == 1
    assert clock.slept == []


# -- Retry-After --------------------------------------------------------------------


async def test_429_waits_retry_after_seconds(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """A 429 with Retry-After: 3 waits 3 s (plus at most 0.3 s of jitter) before the retry,
    and the retry then goes out at once (the throttle's hold has passed meanwhile)."""
    mocked.get(PRED, status=429, payload={"detail": "t"}, headers={"Retry-After": "3"})
    mocked.get(PRED, payload=example("prediction-get-processing"))
    await client.predictions.get("abc")
    assert len(clock.slept) == 1
    assert _waited_retry_after(clock.slept[0], 3.0)
    assert len(sent_all(mocked, "GET", PRED)) == 2


async def test_429_waits_retry_after_http_date(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """A 429 with an HTTP-date Retry-After waits until that moment."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    mocked.get(PRED, status=429, payload={"detail": "t"}, headers={"Retry-After": when})
    mocked.get(PRED, payload=example("prediction-get-processing"))
    await client.predictions.get("abc")
    assert 15.0 < clock.slept[0] <= 22.0


async def test_429_waits_body_retry_after(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """A 429 with only the body's retry_after (5) waits 5 s."""
    url = f"{API}/predictions"
    mocked.post(url, status=429, payload=example("error-429-throttled-low-credit"))
    mocked.post(url, status=201, payload=CREATED)
    await client.predictions.create(version=VERSION, input={})
    assert _waited_retry_after(clock.slept[0], 5.0)
    assert len(sent_all(mocked, "POST", url)) == 2


async def test_429_retry_after_ms_wins(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """retry-after-ms takes precedence over Retry-After."""
    mocked.get(
        PRED,
        status=429,
        payload={"detail": "t"},
        headers={"Retry-After": "9", "retry-after-ms": "250"},
    )
    mocked.get(PRED, payload=example("prediction-get-processing"))
    await client.predictions.get("abc")
    assert _waited_retry_after(clock.slept[0], 0.25)


async def test_429_above_cap_raises_immediately(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """A Retry-After longer than max_retry_after (60 s) raises at once, without sleeping."""
    mocked.get(PRED, status=429, payload={"detail": "t"}, headers={"Retry-After": "120"})
    mocked.get(PRED, payload=example("prediction-get-processing"))
    with pytest.raises(RateLimitError) as info:
        await client.predictions.get("abc")
    assert info.value.retry_after == 120.0
    assert clock.slept == []
    assert request_count(mocked) == 1


async def test_429_at_cap_is_honoured(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """A Retry-After exactly at the cap is still waited for."""
    mocked.get(PRED, status=429, payload={"detail": "t"}, headers={"Retry-After": "60"})
    mocked.get(PRED, payload=example("prediction-get-processing"))
    await client.predictions.get("abc")
    assert _waited_retry_after(clock.slept[0], 60.0)


async def test_custom_max_retry_after(mocked: aioresponses, clock: ManualClock) -> None:
    """RetryPolicy.max_retry_after lowers the cap."""
    policy = RetryPolicy(max_retries=3, max_retry_after=10)
    mocked.get(PRED, status=429, payload={"detail": "t"}, headers={"Retry-After": "11"})
    async with AsyncReplicate(api_token=TOKEN, base_url=API, retry=policy, clock=clock) as client:
        with pytest.raises(RateLimitError):
            await client.predictions.get("abc")
    assert clock.slept == []


async def test_429_without_retry_after_uses_backoff(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """A 429 with no hint waits a jittered backoff within the first step's bounds."""
    mocked.get(PRED, status=429, body=b"")
    mocked.get(PRED, payload=example("prediction-get-processing"))
    await client.predictions.get("abc")
    assert len(clock.slept) == 1
    assert 0.25 <= clock.slept[0] <= 0.5


async def test_cooperative_throttle_holds_same_kind(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """After a 429 on a GET, the next GET waits (the asked 2 s plus a spread of at most
    half of it, so held requests do not return all at once); a create does not."""
    policy = RetryPolicy(max_retries=0)
    mocked.get(PRED, status=429, payload={"detail": "t"}, headers={"Retry-After": "2"})
    mocked.get(PRED, payload=example("prediction-get-processing"))
    mocked.post(f"{API}/predictions", status=201, payload=CREATED)
    async with AsyncReplicate(api_token=TOKEN, base_url=API, retry=policy, clock=clock) as client:
        with pytest.raises(RateLimitError):
            await client.predictions.get("abc")
        await client.predictions.create(version=VERSION, input={})
        assert clock.slept == []
        await client.predictions.get("abc")
        assert len(clock.slept) == 1
        assert 2.0 <= clock.slept[0] <= 3.0
        assert client.stats["throttled"] == 1


# -- exhaustion, disabling, backoff -------------------------------------------------


async def test_exhaustion_reraises_last_error(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """With max_retries=3, four failures raise the fourth error after four attempts."""
    for status in (500, 502, 503, 504):
        mocked.get(PRED, status=status, payload={"detail": f"e{status}"})
    mocked.get(PRED, payload=example("prediction-get-processing"))  # never reached
    with pytest.raises(InternalServerError) as info:
        await client.predictions.get("abc")
    assert info.value.status == 504
    assert info.value.detail == "e504"
    assert len(sent_all(mocked, "GET", PRED)) == 4
    assert len(clock.slept) == 3
    assert client.stats == {"requests": 4, "retries": 3, "throttled": 0}


async def test_exhaustion_on_transport_errors(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """Repeated timeouts end in APITimeoutError after 1 + max_retries attempts."""
    for _ in range(5):
        mocked.get(PRED, exception=TimeoutError())
    with pytest.raises(APITimeoutError):
        await client.predictions.get("abc")
    assert len(sent_all(mocked, "GET", PRED)) == 4
    assert len(clock.slept) == 3


async def test_429_retried_until_the_budget_not_max_retries(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """429s do not count against max_retries: a create throttled (Retry-After: 10) is
    resent until RetryPolicy.total (60 s, from the first attempt) would be passed, then
    the last RateLimitError is raised."""
    url = f"{API}/predictions"
    for _ in range(10):
        mocked.post(url, status=429, payload={"detail": "t"}, headers={"Retry-After": "10"})
    policy = RetryPolicy(max_retries=1, total=60)
    async with AsyncReplicate(api_token=TOKEN, base_url=API, retry=policy, clock=clock) as c:
        start = clock.monotonic()
        with pytest.raises(RateLimitError):
            await c.predictions.create(version=VERSION, input={})
        assert clock.monotonic() - start <= 60
    sent = len(sent_all(mocked, "POST", url))
    assert 5 <= sent <= 6  # one every 10-11 s within 60 s
    assert c.stats["throttled"] == sent


class _LongQueue:
    """A rate limiter whose queue is ``queue`` seconds long after the first 429 (and says so)."""

    def __init__(self, clock: ManualClock, queue: float) -> None:
        self.clock, self.queue, self.held = clock, queue, False
        self.acquired = 0

    def delay(self, kind: str) -> float:
        return self.queue if self.held else 0.0

    async def acquire(self, kind: str) -> None:
        self.acquired += 1
        await self.clock.sleep(self.delay(kind))

    async def on_rate_limited(self, kind: str, retry_after: float | None) -> None:
        self.held = True

    async def aclose(self) -> None:
        return None


async def test_429_not_resent_when_the_limiter_queue_outlasts_the_budget(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """A throttled create whose resend would wait in the limiter past the budget is given up
    after the Retry-After wait, with the 429: not queued for 100 s and sent after it."""
    url = f"{API}/predictions"
    for _ in range(3):
        mocked.post(url, status=429, payload={"detail": "t"}, headers={"Retry-After": "1"})
    limiter = _LongQueue(clock, queue=100.0)
    policy = RetryPolicy(total=60)
    async with AsyncReplicate(
        api_token=TOKEN, base_url=API, retry=policy, clock=clock, limiter=limiter
    ) as client:
        start = clock.monotonic()
        with pytest.raises(RateLimitError):
            await client.predictions.create(version=VERSION, input={})
        assert clock.monotonic() - start < 60
    assert len(sent_all(mocked, "POST", url)) == 1
    assert limiter.acquired == 1


async def test_max_retries_zero_disables(mocked: aioresponses, clock: ManualClock) -> None:
    """max_retries=0 sends once, even for retryable failures."""
    mocked.get(PRED, status=503, payload={"detail": "x"})
    mocked.get(PRED, payload=example("prediction-get-processing"))
    async with AsyncReplicate(api_token=TOKEN, base_url=API, max_retries=0, clock=clock) as client:
        assert client.config.retry.max_retries == 0
        with pytest.raises(InternalServerError):
            await client.predictions.get("abc")
        assert client.stats["retries"] == 0
    assert request_count(mocked) == 1
    assert clock.slept == []


async def test_max_retries_argument_overrides_policy(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """max_retries=1 overrides the policy's count: two attempts in total."""
    for _ in range(3):
        mocked.get(PRED, status=500, payload={"detail": "x"})
    async with AsyncReplicate(api_token=TOKEN, base_url=API, max_retries=1, clock=clock) as client:
        with pytest.raises(InternalServerError):
            await client.predictions.get("abc")
    assert request_count(mocked) == 2


async def test_non_retryable_error_mid_sequence_stops(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """A 404 after a 500 is raised at once."""
    mocked.get(PRED, status=500, payload={"detail": "x"})
    mocked.get(PRED, status=404, payload=example("error-404-not-found-generic"))
    mocked.get(PRED, payload=example("prediction-get-processing"))
    with pytest.raises(NotFoundError):
        await client.predictions.get("abc")
    assert len(sent_all(mocked, "GET", PRED)) == 2
    assert len(clock.slept) == 1


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409, 413, 422])
async def test_client_errors_not_retried(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock, status: int
) -> None:
    """4xx other than 408/425/429 are never retried, even on GET."""
    mocked.get(PRED, status=status, payload={"detail": "no"})
    mocked.get(PRED, payload=example("prediction-get-processing"))
    with pytest.raises(APIStatusError):
        await client.predictions.get("abc")
    assert request_count(mocked) == 1
    assert clock.slept == []


async def test_invalid_json_not_retried(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """A 200 with a bad body is not retried."""
    mocked.get(PRED, body=b"nope")
    mocked.get(PRED, payload=example("prediction-get-processing"))
    with pytest.raises(APIResponseValidationError):
        await client.predictions.get("abc")
    assert request_count(mocked) == 1


async def test_backoff_grows_exponentially(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock, monkeypatch: Any
) -> None:
    """With jitter pinned to its ceiling, waits double: 0.5, 1, 2."""
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    for _ in range(3):
        mocked.get(PRED, status=503, payload={"detail": "x"})
    mocked.get(PRED, payload=example("prediction-get-processing"))
    await client.predictions.get("abc")
    assert clock.slept == [0.5, 1.0, 2.0]


async def test_backoff_floor(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock, monkeypatch: Any
) -> None:
    """With jitter pinned to its floor, every wait is backoff_initial / 2."""
    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    for _ in range(3):
        mocked.get(PRED, status=503, payload={"detail": "x"})
    mocked.get(PRED, payload=example("prediction-get-processing"))
    await client.predictions.get("abc")
    assert clock.slept == [0.25, 0.25, 0.25]


def test_backoff_jitter_bounds() -> None:
    """retry_delay stays within [initial/2, min(max, initial*2^(n-1))] and varies."""
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=8.0)
    error = InternalServerError("x", method="GET", url="u", status=500, headers={}, body=None)
    for retry_number in range(1, 12):
        ceiling = min(8.0, 0.5 * 2 ** (retry_number - 1))
        values = [retry_delay(error, retry_number, policy) for _ in range(200)]
        assert all(0.25 <= v <= ceiling for v in values)
        if ceiling > 0.25:
            assert len(set(values)) > 1  # jittered
    assert max(retry_delay(error, 30, policy) for _ in range(50)) <= 8.0


def test_retry_delay_prefers_retry_after_capped() -> None:
    """A RateLimitError's retry_after wins over backoff, capped at max_retry_after."""
    policy = RetryPolicy(max_retry_after=30)

    def limited(seconds: float) -> RateLimitError:
        return RateLimitError(
            "t", retry_after=seconds, method="GET", url="u", status=429, headers={}, body=None
        )

    assert 4 <= retry_delay(limited(4), 1, policy) <= 4.4
    assert 30 <= retry_delay(limited(100), 1, policy) <= 31


async def test_total_budget_stops_retrying(mocked: aioresponses, clock: ManualClock) -> None:
    """RetryPolicy.total counts from the first attempt: a budget smaller than the first
    backoff (0.25-0.5 s) allows no resend at all."""
    policy = RetryPolicy(max_retries=10, total=0.2)
    for _ in range(12):
        mocked.get(PRED, status=503, payload={"detail": "x"})
    async with AsyncReplicate(api_token=TOKEN, base_url=API, retry=policy, clock=clock) as client:
        with pytest.raises(InternalServerError):
            await client.predictions.get("abc")
    assert request_count(mocked) == 1
    assert clock.slept == []


async def test_total_budget_includes_waits(
    mocked: aioresponses, clock: ManualClock, monkeypatch: Any
) -> None:
    """With backoff pinned at 2 s a wait and total=5, retries stop once the next wait would
    end past 5 s after the first attempt: 1 + 2 retries (waits at 2 and 4 s)."""
    monkeypatch.setattr(random, "uniform", lambda low, high: 2.0)
    policy = RetryPolicy(max_retries=10, total=5)
    for _ in range(12):
        mocked.get(PRED, status=503, payload={"detail": "x"})
    async with AsyncReplicate(api_token=TOKEN, base_url=API, retry=policy, clock=clock) as client:
        with pytest.raises(InternalServerError):
            await client.predictions.get("abc")
    assert request_count(mocked) == 3
    assert clock.slept == [2.0, 2.0]


def test_retry_policy_validation() -> None:
    """RetryPolicy rejects negative retries and non-positive durations."""
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(backoff_initial=0)
    with pytest.raises(ValueError):
        RetryPolicy(max_retry_after=-5)


# -- pure helpers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Retry-After": "5"}, None, 5.0),
        ({"Retry-After": " 5 "}, None, 5.0),
        ({"Retry-After": "0"}, None, 0.0),
        ({"Retry-After": "1.5"}, None, 1.5),
        ({"retry-after": "7"}, None, 7.0),
        ({"Retry-After": "-3"}, None, None),
        ({"Retry-After": "soon"}, None, None),
        ({"Retry-After": "inf"}, None, None),
        ({"Retry-After": "nan"}, None, None),
        ({"Retry-After": ""}, None, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None, 0.0),
        ({"retry-after-ms": "1500"}, None, 1.5),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, None, 1.5),
        ({"retry-after-ms": "junk", "Retry-After": "9"}, None, 9.0),
        ({}, {"retry_after": 5}, 5.0),
        ({}, {"retry_after": 2.5}, 2.5),
        ({}, {"retry_after": "5"}, None),
        ({}, {"retry_after": True}, None),
        ({}, {"retry_after": -1}, None),
        ({}, ["retry_after", 5], None),
        ({"Retry-After": "3"}, {"retry_after": 5}, 3.0),
        ({"Retry-After": "bogus"}, {"retry_after": 5}, 5.0),
        ({}, None, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], body: Any, expected: float | None) -> None:
    """parse_retry_after: seconds, HTTP-dates, ms, body field, and garbage ignored."""
    assert parse_retry_after(headers, body) == expected


def test_parse_retry_after_future_http_date() -> None:
    """A future HTTP-date gives the seconds until then."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    value = parse_retry_after({"Retry-After": when})
    assert value is not None
    assert 85 < value <= 90


def test_parse_retry_after_case_insensitive_headers() -> None:
    """Real response headers are case-insensitive multidicts."""
    assert parse_retry_after(CIMultiDict({"RETRY-AFTER": "4"})) == 4.0


def _status(status: int) -> APIStatusError:
    from replicate_async.exceptions import status_error_class

    return status_error_class(status)(
        "x", method="GET", url="u", status=status, headers={}, body=None
    )


@pytest.mark.parametrize(
    ("exc", "idempotent", "expected"),
    [
        (_status(429), False, True),
        (_status(429), True, True),
        (_status(500), True, True),
        (_status(500), False, False),
        (_status(502), False, False),
        (_status(503), True, True),
        (_status(504), True, True),
        (_status(408), True, True),
        (_status(425), True, True),
        (_status(408), False, False),
        (_status(404), True, False),
        (_status(409), True, False),
        (_status(501), True, False),
        (APIConnectionError("x"), True, True),
        (APIConnectionError("x"), False, False),
        (APIConnectionError("x", connect_failed=True), False, True),
        (APITimeoutError("x"), True, True),
        (APITimeoutError("x"), False, False),
        (APITimeoutError("x", connect_failed=True), False, True),
        (RequestMayHaveSucceededError("x"), True, False),
        (APIResponseValidationError("x"), True, False),
        (ValueError("x"), True, False),
        (asyncio.CancelledError(), True, False),
    ],
)
def test_is_retryable(exc: BaseException, idempotent: bool, expected: bool) -> None:
    """is_retryable: 429 always; 5xx/408/timeouts only when idempotent; never-sent always."""
    assert is_retryable(exc, idempotent=idempotent) is expected


async def test_503_retry_after_header_is_honoured(
    client: AsyncReplicate, mocked: aioresponses, clock: ManualClock
) -> None:
    """A 503 with ``Retry-After: 7`` on a GET waits the asked 7 s, not the backoff."""
    mocked.get(f"{API}/account", status=503, headers={"Retry-After": "7"}, body="")
    mocked.get(f"{API}/account", payload={"type": "user", "username": "u"})
    account = await client.account.get()
    assert account.username == "u"
    assert clock.slept[0] == 7.0
