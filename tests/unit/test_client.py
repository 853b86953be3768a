"""Client lifecycle: configuration sources, token handling, sessions, closing, stats."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import pickle
import warnings
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from replicate_async import (
    APIConnectionError,
    APIStatusError,
    AsyncReplicate,
    ClientClosedError,
    ClientConfig,
    Hooks,
    InvalidArgumentError,
    MissingTokenError,
    RateLimitError,
    RequestOptions,
    RetryEvent,
    RetryPolicy,
    Timeouts,
    _clock,
)
from replicate_async._config import DEFAULT_BASE_URL
from replicate_async._core.raw import RawResponses
from replicate_async.models import Prediction
from replicate_async.testing import ManualClock
from tests.helpers import Watched, enforced, example, tcp_server

from ._helpers import API, TOKEN, request_count, sent, sent_all

ACCOUNT = example("account-get")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ambient REPLICATE_* variables leak into these tests."""
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    monkeypatch.delenv("REPLICATE_BASE_URL", raising=False)


# -- configuration --------------------------------------------------------------------


async def test_token_from_argument(mocked: aioresponses) -> None:
    """api_token= is sent as a Bearer token."""
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate(api_token="r8_arg") as client:
        await client.account.get()
    assert sent(mocked, "GET", f"{API}/account").headers["Authorization"] == "Bearer r8_arg"


async def test_token_from_env(mocked: aioresponses, monkeypatch: pytest.MonkeyPatch) -> None:
    """REPLICATE_API_TOKEN is used when no argument is given."""
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env")
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate() as client:
        await client.account.get()
    assert sent(mocked, "GET", f"{API}/account").headers["Authorization"] == "Bearer r8_env"


async def test_argument_token_beats_env(
    mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit api_token wins over the environment."""
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_env")
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate(api_token="r8_arg") as client:
        await client.account.get()
    assert sent(mocked, "GET", f"{API}/account").headers["Authorization"] == "Bearer r8_arg"


def test_base_url_default() -> None:
    """Without argument or env the public API is used."""
    client = AsyncReplicate(api_token=TOKEN)
    assert client.base_url == DEFAULT_BASE_URL == "https://api.replicate.com/v1"


def test_base_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """REPLICATE_BASE_URL is used (trailing slash removed)."""
    monkeypatch.setenv("REPLICATE_BASE_URL", "http://localhost:9999/v1/")
    assert AsyncReplicate(api_token=TOKEN).base_url == "http://localhost:9999/v1"


def test_base_url_argument_beats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """base_url= wins over REPLICATE_BASE_URL."""
    monkeypatch.setenv("REPLICATE_BASE_URL", "http://localhost:9999/v1")
    client = AsyncReplicate(api_token=TOKEN, base_url="https://proxy.example/v1")
    assert client.base_url == "https://proxy.example/v1"
    assert client.config.base_url == "https://proxy.example/v1"


async def test_custom_base_url_used_for_requests(mocked: aioresponses) -> None:
    """Requests go to the configured base URL, with the token (same origin)."""
    base = "http://localhost:9999/v1"
    mocked.get(f"{base}/account", payload=ACCOUNT)
    async with AsyncReplicate(api_token=TOKEN, base_url=base + "/") as client:
        await client.account.get()
    assert sent(mocked, "GET", f"{base}/account").headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"base_url": "ftp://api.replicate.com/v1"}, ValueError),
        ({"base_url": "api.replicate.com/v1"}, ValueError),
        ({"api_token": 123}, TypeError),
        ({"timeout": "slow"}, TypeError),
        ({"timeout": True}, TypeError),
        ({"timeout": -1}, ValueError),
        ({"max_retries": -1}, ValueError),
        ({"max_connections": 0}, ValueError),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], error: type[Exception]) -> None:
    """Bad constructor arguments fail immediately with ValueError/TypeError."""
    kwargs.setdefault("api_token", TOKEN)
    with pytest.raises(error):
        AsyncReplicate(**kwargs)


def test_timeout_number_sets_every_timeout() -> None:
    """timeout=30 sets connect, read and total (pool keeps its stall bound, 300 s); a
    Timeouts object is used as is."""
    assert AsyncReplicate(api_token=TOKEN, timeout=30).config.timeouts == Timeouts(
        connect=30, read=30, total=30, pool=300
    )
    custom = Timeouts(connect=1, read=2, total=3)
    assert AsyncReplicate(api_token=TOKEN, timeout=custom).config.timeouts is custom
    assert isinstance(AsyncReplicate(api_token=TOKEN).config, ClientConfig)


async def test_timeouts_passed_to_aiohttp(mocked: aioresponses, watched: list[Watched]) -> None:
    """The configured Timeouts bound every attempt: aiohttp keeps the connect phase, the
    client's watchdog the read and the total."""
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate(
        api_token=TOKEN, timeout=Timeouts(connect=3, read=7, total=11)
    ) as client:
        await client.account.get()
    timeout = sent(mocked, "GET", f"{API}/account").kwargs["timeout"]
    assert len(watched) == 1
    assert enforced(timeout, watched[0]) == (3, 7, 11)


async def test_no_redirects_followed(mocked: aioresponses) -> None:
    """API requests never follow redirects (the token must not travel elsewhere)."""
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate(api_token=TOKEN) as client:
        await client.account.get()
    assert sent(mocked, "GET", f"{API}/account").kwargs["allow_redirects"] is False


# -- token handling ---------------------------------------------------------------------


async def test_missing_token_not_an_error_at_construction() -> None:
    """A client without a token can be constructed (and closed)."""
    client = AsyncReplicate()
    assert "token=missing" in repr(client)
    await client.aclose()


async def test_missing_token_raises_at_first_request(mocked: aioresponses) -> None:
    """MissingTokenError is raised at the first request that needs a token; none is sent."""
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate() as client:
        with pytest.raises(MissingTokenError) as info:
            await client.account.get()
        with pytest.raises(MissingTokenError):
            await client.predictions.list().collect()
    assert "REPLICATE_API_TOKEN" in str(info.value)
    assert isinstance(info.value, ValueError)
    assert request_count(mocked) == 0


async def test_empty_token_is_missing(mocked: aioresponses) -> None:
    """An empty string token counts as missing."""
    async with AsyncReplicate(api_token="") as client:
        with pytest.raises(MissingTokenError):
            await client.predictions.get("abc")
    assert request_count(mocked) == 0


async def test_search_works_without_token(mocked: aioresponses) -> None:
    """GET /search needs no token and sends no Authorization header."""
    url = f"{API}/search?query=flux"
    mocked.get(url, payload=example("search-get-spec-example"))
    async with AsyncReplicate() as client:
        result = await client.search("flux")
    assert result.query == "nano banana"
    assert "Authorization" not in sent(mocked, "GET", url).headers


def test_repr_hides_token() -> None:
    """repr(client) says whether a token is set, never what it is."""
    client = AsyncReplicate(api_token=TOKEN)
    text = repr(client)
    assert TOKEN not in text
    assert TOKEN not in str(client)
    assert "token=set" in text
    assert "https://api.replicate.com/v1" in text
    assert TOKEN not in repr(client.config)


def test_client_cannot_be_pickled() -> None:
    """Pickling (which would copy the secret) is refused."""
    with pytest.raises(TypeError):
        pickle.dumps(AsyncReplicate(api_token=TOKEN))


def test_user_agent_default_and_custom() -> None:
    """The default User-Agent names the SDK, aiohttp and Python; user_agent= replaces it."""
    default = AsyncReplicate(api_token=TOKEN)._http._base_headers["User-Agent"]
    assert default.startswith("replicate-async/0.1.0 ")
    assert "aiohttp/" in default
    assert "python/" in default
    custom = AsyncReplicate(api_token=TOKEN, user_agent="my-app/2")
    assert custom._http._base_headers["User-Agent"] == "my-app/2"


async def test_custom_user_agent_sent(mocked: aioresponses) -> None:
    """user_agent= is what goes on the wire."""
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate(api_token=TOKEN, user_agent="my-app/2") as client:
        await client.account.get()
    assert sent(mocked, "GET", f"{API}/account").headers["User-Agent"] == "my-app/2"


# -- lifecycle ------------------------------------------------------------------------


async def test_async_with_opens_and_closes() -> None:
    """`async with` creates the session on entry and closes it on exit."""
    client = AsyncReplicate(api_token=TOKEN)
    assert client._http._pool._session is None
    async with client as entered:
        assert entered is client
        session = client._http._pool._session
        assert isinstance(session, aiohttp.ClientSession)
        assert not session.closed
        assert not client.closed
    assert session.closed
    assert client.closed


async def test_use_after_close_raises(mocked: aioresponses) -> None:
    """Any request after aclose() raises ClientClosedError and sends nothing."""
    mocked.get(f"{API}/account", payload=ACCOUNT)
    client = AsyncReplicate(api_token=TOKEN)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await client.account.get()
    with pytest.raises(ClientClosedError):
        await client.models.list().collect()
    with pytest.raises(ClientClosedError):
        async with client:
            pass
    assert request_count(mocked) == 0


async def test_aclose_is_idempotent() -> None:
    """aclose() may be called any number of times."""
    client = AsyncReplicate(api_token=TOKEN)
    async with client:
        pass
    await client.aclose()
    await client.aclose()
    assert client.closed


async def test_lazy_session_without_async_with(mocked: aioresponses) -> None:
    """Without `async with`, the first request creates the session; aclose closes it."""
    mocked.get(f"{API}/account", payload=ACCOUNT)
    client = AsyncReplicate(api_token=TOKEN)
    account = await client.account.get()
    assert account.username == "acme"
    session = client._http._pool._session
    assert session is not None
    assert not session.closed
    await client.aclose()
    assert session.closed


async def test_borrowed_session_not_closed(mocked: aioresponses) -> None:
    """A session passed in is used for requests and left open by aclose()."""
    mocked.get(f"{API}/account", payload=ACCOUNT)
    session = aiohttp.ClientSession()
    try:
        async with AsyncReplicate(api_token=TOKEN, session=session) as client:
            await client.account.get()
            assert client._http._pool._session is session
        assert client.closed
        assert not session.closed
    finally:
        await session.close()
    assert sent(mocked, "GET", f"{API}/account").headers["Authorization"] == f"Bearer {TOKEN}"


async def test_borrowed_session_without_async_with(mocked: aioresponses) -> None:
    """A borrowed session also survives aclose() when used lazily."""
    mocked.get(f"{API}/account", payload=ACCOUNT)
    session = aiohttp.ClientSession()
    try:
        client = AsyncReplicate(api_token=TOKEN, session=session)
        await client.account.get()
        await client.aclose()
        assert not session.closed
    finally:
        await session.close()


def test_two_sequential_asyncio_runs() -> None:
    """One client works across two asyncio.run() calls and leaves no unclosed session."""
    sessions: list[aiohttp.ClientSession] = []
    client = AsyncReplicate(api_token=TOKEN, base_url=API)

    async def use() -> str:
        account = await client.account.get()
        session = client._http._pool._session
        assert session is not None
        assert not session.closed
        sessions.append(session)
        return account.username or ""

    with aioresponses() as mocked, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mocked.get(f"{API}/account", payload=ACCOUNT, repeat=True)
        assert asyncio.run(use()) == "acme"
        assert asyncio.run(use()) == "acme"
        assert len(sessions) == 2
        assert sessions[0] is not sessions[1]
        assert all(s.closed for s in sessions)
        assert request_count(mocked) == 2
        del sessions[:]
        gc.collect()
    unclosed = [w for w in caught if "nclosed" in str(w.message)]
    assert unclosed == []
    assert not client.closed


async def test_stats_count_requests_and_retries(mocked: aioresponses) -> None:
    """client.stats counts every HTTP request sent and every retry."""
    clock = ManualClock(auto_advance=True)
    mocked.get(f"{API}/account", status=503, payload={"detail": "x"})
    mocked.get(f"{API}/account", payload=ACCOUNT)
    mocked.get(f"{API}/hardware", body=b"[]")
    async with AsyncReplicate(api_token=TOKEN, max_retries=2, clock=clock) as client:
        assert client.stats == {"requests": 0, "retries": 0, "throttled": 0}
        await client.account.get()
        await client.hardware.list()
        assert client.stats == {"requests": 3, "retries": 1, "throttled": 0}
    assert len(clock.slept) == 1


async def test_max_connections_bounds_concurrency(mocked: aioresponses) -> None:
    """With max_connections=2, at most two requests are in flight at once."""
    in_flight = 0
    peak = 0

    async def slow(url: Any, **kwargs: Any) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        in_flight -= 1

    mocked.get(f"{API}/account", payload=ACCOUNT, callback=slow, repeat=True)
    async with AsyncReplicate(api_token=TOKEN, max_connections=2) as client:
        results = await asyncio.gather(*(client.account.get() for _ in range(6)))
    assert len(results) == 6
    assert peak == 2
    assert request_count(mocked) == 6


# -- the rate limiter seam, aiohttp's keep-alive resend, deadlines ------------------------


class RecordingLimiter:
    """A RateLimiter that never waits and records what the request path tells it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float | None]] = []

    async def acquire(self, kind: str) -> None:
        self.events.append(("acquire", kind, None))

    async def on_rate_limited(self, kind: str, retry_after: float | None) -> None:
        self.events.append(("429", kind, retry_after))

    async def aclose(self) -> None:
        self.events.append(("aclose", "", None))


async def test_limiter_is_asked_before_every_attempt_and_told_of_429s(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """First attempts and retries both acquire; a 429 is reported with its Retry-After; a
    limiter passed in is shared, so the client does not close it."""
    limiter = RecordingLimiter()
    url = f"{API}/predictions"
    mocked.post(url, status=429, payload={"detail": "slow"}, headers={"Retry-After": "2"})
    mocked.post(url, status=201, payload=example("prediction-create-async-starting"))
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate(api_token=TOKEN, limiter=limiter, clock=clock) as client:
        await client.predictions.create(version="a" * 64, input={})
        await client.account.get()
    assert limiter.events == [
        ("acquire", "create", None),
        ("429", "create", 2.0),
        ("acquire", "create", None),
        ("acquire", "other", None),
    ]
    assert 2.0 <= clock.slept[0] <= 2.2  # the retry's own Retry-After wait, jittered


async def test_retry_after_above_the_cap_leaves_no_hold(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """A 429 asking for 120 s (cap 60) is raised at once; the throttle learns of the 429
    but not of that wait, so the next, unrelated call goes out without waiting."""
    mocked.get(
        f"{API}/account", status=429, payload={"detail": "t"}, headers={"Retry-After": "120"}
    )
    mocked.get(f"{API}/hardware", body=b"[]")
    async with AsyncReplicate(api_token=TOKEN, clock=clock) as client:
        with pytest.raises(RateLimitError) as info:
            await client.account.get()
        assert info.value.retry_after == 120
        assert await client.hardware.list() == []
    assert clock.slept == []
    assert request_count(mocked) == 2


async def test_request_deadline_bounds_429_retries(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """HTTPCore.request(deadline=...) replaces RetryPolicy.total: 429s asking for 10 s are
    resent while the next wait ends before the deadline (25 s): at 0, ~10, ~20."""
    for _ in range(5):
        mocked.get(
            f"{API}/account", status=429, payload={"detail": "t"}, headers={"Retry-After": "10"}
        )
    async with AsyncReplicate(api_token=TOKEN, clock=clock) as client:
        with pytest.raises(RateLimitError):
            await client._http.request("GET", "account", deadline=clock.monotonic() + 25)
    assert request_count(mocked) == 3


async def test_enclosing_deadline_is_the_retry_budget(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """Inside a clock deadline (as run(timeout=...) sets), 429s are retried until it, not
    until RetryPolicy.total (here 15 s): a 40 s deadline allows resends at ~10, ~20, ~30."""
    for _ in range(6):
        mocked.get(
            f"{API}/account", status=429, payload={"detail": "t"}, headers={"Retry-After": "10"}
        )
    policy = RetryPolicy(total=15)
    async with AsyncReplicate(api_token=TOKEN, retry=policy, clock=clock) as client:
        token = _clock._DEADLINE.set(clock.monotonic() + 40)
        try:
            with pytest.raises(RateLimitError):
                await client.account.get()
        finally:
            _clock._DEADLINE.reset(token)
    assert request_count(mocked) == 4


@contextlib.asynccontextmanager
async def _drops_second_request_on_a_connection() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A raw HTTP/1.1 server on 127.0.0.1: the first request on each connection gets the
    account (kept alive); the second is read, then the connection is closed unanswered."""
    seen: list[bytes] = []
    body = json.dumps(ACCOUNT).encode()
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for n in range(2):
                head = await reader.readuntil(b"\r\n\r\n")
                seen.append(head.split(b"\r\n", 1)[0])
                if n == 0:
                    writer.write(answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async with tcp_server(serve) as port:
        yield f"http://127.0.0.1:{port}/v1", seen


@pytest.mark.parametrize("max_retries", [0, 1])
async def test_max_retries_counts_every_request_on_the_wire(
    clock: ManualClock, max_retries: int
) -> None:
    """A kept-alive connection dropped under a GET: aiohttp would silently resend it once;
    the client turns that off, so max_retries=N means at most N + 1 requests (real sockets)."""
    async with (
        _drops_second_request_on_a_connection() as (base_url, seen),
        AsyncReplicate(
            api_token=TOKEN, base_url=base_url, max_retries=max_retries, clock=clock
        ) as client,
    ):
        await client.account.get()
        seen.clear()
        if max_retries == 0:
            with pytest.raises(APIConnectionError):
                await client.account.get()
        else:
            assert (await client.account.get()).username == ACCOUNT["username"]
    assert seen == [b"GET /v1/account HTTP/1.1"] * (max_retries + 1)


# -- request options and with_options ---------------------------------------------------


async def test_with_options_sends_the_extras_and_shares_the_pool(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """Extra headers, query and body go out exactly; the copy shares the session, the
    throttle and the counters; the original client is unchanged."""
    url = f"{API}/predictions"
    mocked.post(f"{url}?trace=1", status=201, payload=example("prediction-create-async-starting"))
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate(api_token=TOKEN, clock=clock) as client:
        tuned = client.with_options(
            extra_headers={"X-Trace": "abc"}, extra_query={"trace": "1"}, extra_body={"tag": "t"}
        )
        assert tuned._http._pool is client._http._pool
        assert tuned._http.limiter is client._http.limiter
        await tuned.predictions.create(version="a" * 64, input={"p": 1})
        await client.account.get()
        request = sent(mocked, "POST", f"{url}?trace=1")
        assert request.json() == {"version": "a" * 64, "input": {"p": 1}, "tag": "t"}
        assert request.headers["X-Trace"] == "abc"
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert "X-Trace" not in sent(mocked, "GET", f"{API}/account").headers
        assert client.stats["requests"] == 2


async def test_extra_headers_never_replace_the_token(mocked: aioresponses) -> None:
    """Authorization is refused in any spelling, before anything is sent."""
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate(api_token=TOKEN) as client:
        for name in ("Authorization", "authorization", "AUTHORIZATION"):
            with pytest.raises(InvalidArgumentError, match="Authorization"):
                client.with_options(extra_headers={name: "Bearer other"})
            with pytest.raises(InvalidArgumentError, match="Authorization"):
                await client.account.get(extra_headers={name: "Bearer other"})
        await client.account.get()
    assert sent(mocked, "GET", f"{API}/account").headers["Authorization"] == f"Bearer {TOKEN}"


async def test_with_options_max_retries_and_timeout(
    mocked: aioresponses, clock: ManualClock, watched: list[Watched]
) -> None:
    """max_retries=0 in the copy disables its retries; timeout sets every phase."""
    mocked.get(f"{API}/account", status=503, payload={"detail": "x"})
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate(api_token=TOKEN, clock=clock) as client:
        strict = client.with_options(max_retries=0, timeout=7)
        with pytest.raises(APIStatusError):
            await strict.account.get()
        timeout = sent(mocked, "GET", f"{API}/account").kwargs["timeout"]
        assert enforced(timeout, watched[0]) == (7, 7, 7)
        await client.account.get()  # the original still retries (and gets the 200)
    # ... with the client's own timeouts (connect 10, read 60, total 300 by default).
    first, then = sent_all(mocked, "GET", f"{API}/account")
    assert first.kwargs["timeout"] == timeout
    assert [enforced(then.kwargs["timeout"], w) for w in watched[1:]] == [(10, 60, 300)]


async def test_per_request_options_merge_over_the_clients(mocked: aioresponses) -> None:
    """HTTPCore.request(options=...) merges once over the client's options, by key."""
    mocked.get(f"{API}/account?a=1&b=2", payload=ACCOUNT)
    async with AsyncReplicate(api_token=TOKEN) as client:
        base = client.with_options(extra_query={"a": "1", "b": "1"}, extra_headers={"X-A": "1"})
        call = RequestOptions(extra_query={"b": "2"}, extra_headers={"X-B": "2"})
        await base._http.request("GET", "account", options=call)
    request = sent(mocked, "GET", f"{API}/account?a=1&b=2")
    assert (request.headers["X-A"], request.headers["X-B"]) == ("1", "2")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": float("inf")}, ValueError),
        ({"timeout": "5"}, TypeError),
        ({"max_retries": -1}, ValueError),
        ({"max_retries": 1.5}, TypeError),
        ({"extra_headers": {"X": "a\r\nInjected: 1"}}, ValueError),
        ({"extra_headers": {"X": 1}}, TypeError),
        ({"extra_body": ["x"]}, TypeError),
    ],
)
def test_request_options_are_checked(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        RequestOptions(**kwargs)


# -- hooks -------------------------------------------------------------------------------


async def test_hooks_see_requests_responses_retries_and_throttling(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """Sync and async hooks get one event per attempt, per response, per retry (with its
    reason) and per throttled wait."""
    events: list[Any] = []

    async def on_retry(event: RetryEvent) -> None:
        events.append(("retry", event.reason, event.attempt, round(event.wait)))

    hooks = Hooks(
        on_request=lambda e: events.append(("request", e.method, e.kind, e.attempt)),
        on_response=lambda e: events.append(("response", e.status, e.attempt, e.request_id)),
        on_retry=on_retry,
        on_throttle=lambda e: events.append(("throttle", e.kind)),
    )
    url = f"{API}/predictions"
    mocked.post(url, status=429, payload={"detail": "t"}, headers={"Retry-After": "3"})
    mocked.post(
        url,
        status=201,
        payload=example("prediction-create-async-starting"),
        headers={"x-request-id": "req-1"},
    )
    async with AsyncReplicate(api_token=TOKEN, clock=clock, hooks=hooks) as client:
        await client.predictions.create(version="a" * 64, input={})
    assert events == [
        ("request", "POST", "create", 1),
        ("response", 429, 1, None),
        ("retry", "429", 2, 3),
        ("request", "POST", "create", 2),
        ("response", 201, 2, "req-1"),
    ]


async def test_a_failing_hook_is_logged_and_never_breaks_the_request(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> None:
        raise RuntimeError("hook bug")

    mocked.get(f"{API}/account", payload=ACCOUNT)
    hooks = Hooks(on_request=broken, on_response=broken)
    async with AsyncReplicate(api_token=TOKEN, hooks=hooks) as client:
        assert (await client.account.get()).username == ACCOUNT["username"]
    failures = [r for r in caplog.records if "hook" in r.getMessage()]
    assert len(failures) == 2
    assert TOKEN not in caplog.text


async def test_on_throttle_reports_the_wait(mocked: aioresponses, clock: ManualClock) -> None:
    """After a hint of 0 tokens, the next create waits one interval: on_throttle says so."""
    waits: list[float] = []
    hooks = Hooks(on_throttle=lambda e: waits.append(e.wait))
    url = f"{API}/predictions"
    created = example("prediction-create-async-starting")
    mocked.post(url, status=201, payload=created, headers={"ratelimit-remaining": "0"})
    mocked.post(url, status=201, payload=created, headers={"ratelimit-remaining": "0"})
    async with AsyncReplicate(api_token=TOKEN, clock=clock, hooks=hooks) as client:
        await client.predictions.create(version="a" * 64, input={})
        await client.predictions.create(version="a" * 64, input={})
    assert waits == [pytest.approx(0.1, abs=0.003)]


# -- raw responses -------------------------------------------------------------------------


async def test_with_raw_response_gives_status_headers_and_the_parsed_object(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """The last response's status (201), headers, request id, elapsed time and retries,
    and .parse() returns exactly what the plain call would."""
    url = f"{API}/predictions"
    mocked.post(url, status=503, payload={"detail": "x"}, headers={"Retry-After": "1"})
    mocked.post(
        url,
        status=201,
        payload=example("prediction-create-async-starting"),
        headers={"x-request-id": "req-42"},
    )
    async with AsyncReplicate(api_token=TOKEN, clock=clock) as client:
        with pytest.raises(APIStatusError):  # a create is never resent after a 503
            await client.with_raw_response.predictions.create(version="a" * 64, input={})
        raw = await client.with_raw_response.predictions.create(version="a" * 64, input={})
    assert (raw.method, raw.url, raw.status) == ("POST", url, 201)
    assert raw.request_id == "req-42"
    assert raw.retries == 0
    assert raw.elapsed >= 0
    prediction = raw.parse()
    assert isinstance(prediction, Prediction)
    assert prediction.id == example("prediction-create-async-starting")["id"]


async def test_raw_response_counts_retries(mocked: aioresponses, clock: ManualClock) -> None:
    mocked.get(f"{API}/account", status=502, payload={"detail": "x"})
    mocked.get(f"{API}/account", payload=ACCOUNT)
    async with AsyncReplicate(api_token=TOKEN, clock=clock) as client:
        raw = await client.with_raw_response.account.get()
        assert isinstance(client.with_raw_response.models, RawResponses)
    assert (raw.status, raw.retries) == (200, 1)
    assert raw.parse().username == ACCOUNT["username"]
