"""Faults over real sockets, for every kind of call: the exact outcome, the exact count.

The matrix below is the contract. Each cell is ``(outcome, requests)``: the exception
raised (or ``OK``: the right answer came back), and how many requests for the faulted
endpoint the server saw (for ``connection refused``: connection attempts the client made;
for the paginated walk: requests for the faulted first page, the later pages being
checked to have been fetched exactly once when the walk completes).

Retry waits are served in virtual time (:class:`~replicate_async.testing.ManualClock`), so
nothing here sleeps for them; the timeouts under test are real but small, and a timed-out
attempt is proved by its outcome (the fault's response would otherwise have arrived).

Two facts of life show in the counts:

- aiohttp itself resends a GET or DELETE once when the connection drops (its
  stale-keep-alive retry), so a reset costs those methods two server requests per SDK
  attempt; QUERY and POST are never resent by aiohttp.
- A POST create whose request may have been read is never replayed by the SDK
  (:class:`RequestMayHaveSucceededError`); only a refused connection or a 429, which
  prove it was not processed, are retried.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
import pytest
from aiohttp import web
from yarl import URL

from replicate_async import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AsyncReplicate,
    InternalServerError,
    NotFoundError,
    PaginationError,
    PollPolicy,
    RateLimitError,
    RequestMayHaveSucceededError,
    RequestMayHaveSucceededTimeoutError,
    RetryPolicy,
    StreamError,
    Timeouts,
)
from replicate_async._converter import structure
from replicate_async.models import Prediction
from replicate_async.testing import FakeReplicate, ManualClock

from ._calls import CALLS, Call, Prepared
from ._support import (
    OtherServer,
    StubSession,
    as_session,
    chain,
    closed_port,
)
from .conftest import SECRET

OK = "ok"
#: The call returned the (non-JSON) bytes exactly as sent: a file's content is opaque.
VERBATIM = "verbatim"
RMHSE = RequestMayHaveSucceededError
RMHST = RequestMayHaveSucceededTimeoutError
STREAM_ERR = StreamError

Outcome = Any
Cell = tuple[Outcome, int]


@attrs.frozen
class Fault:
    """How a fault is injected (``fake.faults.add`` arguments) and the client's timeouts."""

    add: dict[str, Any] = attrs.field(factory=dict)
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    #: The fake's handler runs for a faulted request (so a create does create).
    handler_runs: bool = False


FAULTS: dict[str, Fault] = {
    "connection refused": Fault(),
    "reset before read": Fault({"drop_connection": "before_body"}),
    "reset before read, every attempt": Fault({"drop_connection": "before_body", "times": 20}),
    "reset after read": Fault({"drop_connection": "after_body"}, handler_runs=True),
    "slow headers": Fault({"delay": 0.3, "times": 3}, Timeouts(read=0.1)),
    "slow body": Fault({"slow_body": 0.3, "times": 3}, Timeouts(read=0.1), handler_runs=True),
    "slow body > total": Fault(
        {"slow_body": 0.1, "times": 3}, Timeouts(total=0.15), handler_runs=True
    ),
    "truncated body": Fault({"truncate_body": True}, handler_runs=True),
    "invalid JSON (200)": Fault({"invalid_json": True}),
    "HTML 502 page": Fault({"html_error": True, "times": 3}),
    "empty 500": Fault({"empty_body": True, "status": 500, "times": 3}),
    "429 x2, Retry-After: 3": Fault({"status": 429, "retry_after": 3, "times": 2}),
    "429 x2, Retry-After: <date>": Fault(
        {"status": 429, "retry_after": 3, "retry_after_date": True, "times": 2}
    ),
    "503 x2 then OK": Fault({"status": 503, "times": 2}),
}

# fmt: off
#: fault -> one cell per call, in CALLS order:
#:  GET  |  POST create  |  QUERY search  |  DELETE  |  walk (page 1)  |  run()  |  stream
#:  |  file upload  |  file download
EXPECTED: dict[str, list[Cell]] = {
    "connection refused": [
        (APIConnectionError, 3), (APIConnectionError, 3), (APIConnectionError, 3),
        (APIConnectionError, 3), (APIConnectionError, 3), (APIConnectionError, 3),
        (APIConnectionError, 3), (APIConnectionError, 3), (APIConnectionError, 3),
    ],
    "reset before read": [
        (OK, 2), (RMHSE, 1), (OK, 2), (OK, 2), (OK, 2), (RMHSE, 1), (OK, 2), (RMHSE, 1), (OK, 2),
    ],
    # aiohttp's own resend of an idempotent request on a dropped keep-alive connection is
    # off: max_retries=2 means 3 requests on the wire.
    "reset before read, every attempt": [
        (APIConnectionError, 3), (RMHSE, 1), (APIConnectionError, 3), (APIConnectionError, 3),
        (APIConnectionError, 3), (RMHSE, 1), (STREAM_ERR, 2), (RMHSE, 1),
        (APIConnectionError, 3),
    ],
    # DELETE: the file *was* deleted; aiohttp's own resend then gets the 404 (see report).
    "reset after read": [
        (OK, 2), (RMHSE, 1), (OK, 2), (NotFoundError, 2), (OK, 2), (RMHSE, 1), (OK, 1),
        (RMHSE, 1), (OK, 2),
    ],
    # run() creates with wait=False here; a Prefer: wait create raises its read timeout.
    # The fake's stream is written before a fault could slow it: the SSE origin test
    # covers slow and cut streams.
    # A create that timed out after it was sent is both RMHSE and an APITimeoutError.
    "slow headers": [
        (APITimeoutError, 3), (RMHST, 1), (APITimeoutError, 3), (APITimeoutError, 3),
        (APITimeoutError, 3), (RMHST, 1), (STREAM_ERR, 2), (RMHST, 1), (APITimeoutError, 3),
    ],
    "slow body": [
        (APITimeoutError, 3), (RMHST, 1), (APITimeoutError, 3), (OK, 1),
        (APITimeoutError, 3), (RMHST, 1), (OK, 1), (RMHST, 1), (APITimeoutError, 3),
    ],
    "slow body > total": [
        (APITimeoutError, 3), (RMHST, 1), (APITimeoutError, 3), (OK, 1),
        (APITimeoutError, 3), (RMHST, 1), (OK, 1), (RMHST, 1), (APITimeoutError, 3),
    ],
    "truncated body": [
        (OK, 2), (RMHSE, 1), (OK, 2), (OK, 1), (OK, 2), (RMHSE, 1), (OK, 1), (RMHSE, 1), (OK, 2),
    ],
    # stream: a 200 that is not an event stream ends without `done`: resumed once.
    "invalid JSON (200)": [
        (APIResponseValidationError, 1), (APIResponseValidationError, 1),
        (APIResponseValidationError, 1), (OK, 1), (APIResponseValidationError, 1),
        (APIResponseValidationError, 1), (OK, 2), (APIResponseValidationError, 1),
        (VERBATIM, 1),
    ],
    "HTML 502 page": [
        (InternalServerError, 3), (InternalServerError, 1), (InternalServerError, 3),
        (InternalServerError, 3), (InternalServerError, 3), (InternalServerError, 1),
        (InternalServerError, 1), (InternalServerError, 1), (InternalServerError, 3),
    ],
    "empty 500": [
        (InternalServerError, 3), (InternalServerError, 1), (InternalServerError, 3),
        (InternalServerError, 3), (InternalServerError, 3), (InternalServerError, 1),
        (InternalServerError, 1), (InternalServerError, 1), (InternalServerError, 3),
    ],
    "429 x2, Retry-After: 3": [
        (OK, 3), (OK, 3), (OK, 3), (OK, 3), (OK, 3), (OK, 3), (RateLimitError, 1), (OK, 3),
        (OK, 3),
    ],
    "429 x2, Retry-After: <date>": [
        (OK, 3), (OK, 3), (OK, 3), (OK, 3), (OK, 3), (OK, 3), (RateLimitError, 1), (OK, 3),
        (OK, 3),
    ],
    "503 x2 then OK": [
        (OK, 3), (InternalServerError, 1), (OK, 3), (OK, 3), (OK, 3), (InternalServerError, 1),
        (InternalServerError, 1), (InternalServerError, 1), (OK, 3),
    ],
}
# fmt: on

CASES = [
    pytest.param(fault, call, EXPECTED[fault][i], id=f"{fault} | {call.name}")
    for fault in FAULTS
    for i, call in enumerate(CALLS)
]
FAST_POLL = PollPolicy(initial=0.01, maximum=0.05, jitter=0.0)


def test_the_matrix_is_complete() -> None:
    assert set(EXPECTED) == set(FAULTS)
    assert all(len(row) == len(CALLS) for row in EXPECTED.values())


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate(page_size=2) as server:
        yield server


def _client(base_url: str, token: str, fault: Fault, sleep: ManualClock) -> AsyncReplicate:
    return AsyncReplicate(
        api_token=token,
        base_url=base_url,
        timeout=fault.timeouts,
        retry=RetryPolicy(max_retries=2),
        clock=sleep,
        poll=FAST_POLL,
    )


async def _created(fake: FakeReplicate, what: str | None) -> int:
    """How many predictions (or files) exist on the server, counted through the API."""
    if what is None:
        return 0
    async with fake.client() as probe:
        listing = probe.predictions.list() if what == "predictions" else probe.files.list()
        return len(await listing.collect())


def _check_outcome(
    name: str, call: Call, prep: Prepared, expected: Outcome, result: Any, error: Any
) -> None:
    if expected == OK:
        assert error is None, f"expected success, got {error!r}"
        assert call.check(result, prep), result
        return
    if expected == VERBATIM:
        assert error is None, f"expected the raw bytes, got {error!r}"
        assert result == b'{"id": "oops", "status": '
        return
    assert error is not None, f"expected {expected.__name__}, got {result!r}"
    assert type(error) is expected, f"expected {expected.__name__}, got {error!r}"
    if expected is RMHSE or expected is RMHST:
        text = str(error)
        assert "may have created" in text
        assert "not retried" in text
        assert "list recent predictions" in text
    if expected is APITimeoutError:
        assert any(isinstance(e, TimeoutError) for e in chain(error))
    if expected is InternalServerError and name == "HTML 502 page":
        assert (error.status, error.body) == (502, "<html>bad gateway</html>")
    if expected is InternalServerError and name == "empty 500":
        assert (error.status, error.body) == (500, "")
    if expected is InternalServerError and name.startswith("503"):
        assert (error.status, error.detail) == (503, "Injected fault (HTTP 503)")
    if expected is APIResponseValidationError:
        assert error.body == '{"id": "oops", "status": '
    if name == "connection refused":
        assert isinstance(error, APIConnectionError)
        assert error.connect_failed is True
    # Whatever went wrong, the report never carries the token.
    text = "".join(traceback.format_exception(error))
    assert "r8_" not in text


@pytest.mark.parametrize(("name", "call", "cell"), CASES)
async def test_fault(
    name: str, call: Call, cell: Cell, vsleep: ManualClock, fake: FakeReplicate
) -> None:
    expected, count = cell
    fault = FAULTS[name]
    result: Any = None
    error: Any = None
    if name == "connection refused":
        origin = f"http://127.0.0.1:{closed_port()}"
        async with _client(origin + "/v1", fake.token, fault, vsleep) as client:
            try:
                result = await call.invoke(client, origin, Prepared())
            except Exception as exc:
                error = exc
            seen = client.stats["requests"]
        _check_outcome(name, call, Prepared(), expected, result, error)
        assert seen == count
        assert len(vsleep.slept) == 2  # both retries waited (backoff), in virtual time
        return

    async with fake.client() as helper:
        prep = await call.setup(helper, fake)
    created_before = await _created(fake, call.creates)
    fake.clear_requests()
    async with _client(fake.base_url, fake.token, fault, vsleep) as client:
        injected = fake.faults.add(call.path, method=call.method, **fault.add)
        try:
            result = await call.invoke(client, fake.origin, prep)
        except Exception as exc:
            error = exc
    _check_outcome(name, call, prep, expected, result, error)

    faulted = fake.requests_matching(call.method, call.path)
    if call.name == "paginated walk":
        first = [r for r in faulted if "cursor" not in r.query]
        later = [r.query["cursor"] for r in faulted if "cursor" in r.query]
        assert len(first) == count
        if expected == OK:
            assert len(later) == prep.baseline - 1 == len(set(later))
        else:
            assert later == []
    else:
        assert len(faulted) == count
    if call.name == "stream":
        assert fake.count("POST", "/v1/predictions") == 1  # the create is never repeated
    hits = injected.hits
    assert hits == min(count, fault.add.get("times", 1))

    if call.creates is not None and "delay" not in fault.add:
        # Nothing duplicated: exactly one object per request that reached the handler.
        creating = count if call.name != "stream" else 1
        unfaulted = creating - (hits if call.name != "stream" else 0)
        expected_new = unfaulted + (hits if fault.handler_runs and call.name != "stream" else 0)
        assert await _created(fake, call.creates) - created_before == expected_new

    if name.startswith("429"):
        # One wait per 429, what was asked plus at most 10 % of jitter: never shorter, and
        # the throttle does not wait a second time for the same Retry-After.
        waits = [w for w in vsleep.slept if w >= 1.0]  # not run()'s polls
        if expected == OK:
            assert len(waits) == 2
            if "date" in name:
                assert all(1.0 < w <= 3.3 for w in waits), waits
            else:
                assert all(3.0 <= w <= 3.3 for w in waits), waits


# -- pagination: links that loop, leave the host, are relative, or drop to http ---------------


async def _clean_walk(fake: FakeReplicate) -> tuple[list[str], int]:
    fake.clear_requests()
    async with fake.client() as client:
        names = [m.name for m in await client.models.list().collect()]
    return names, len(fake.requests)


@pytest.mark.replicate_fake(page_size=3)
async def test_next_that_loops_stops_after_one_request(replicate_fake: FakeReplicate) -> None:
    replicate_fake.pagination_quirk = "loop"
    async with replicate_fake.client() as client:
        with pytest.raises(PaginationError, match="loop"):
            await client.models.list().collect()
    assert replicate_fake.count() == 1


@pytest.mark.replicate_fake(page_size=3)
async def test_next_to_a_loop_back_after_several_pages_stops(
    replicate_fake: FakeReplicate,
) -> None:
    """A cycle longer than one page (p1 -> p2 -> p1) is caught on its first repeat."""
    fake = replicate_fake
    async with fake.client() as client:
        first = await client.models.list()
        assert first.next is not None
        loop_back = {"results": [], "next": f"{fake.base_url}/models", "previous": None}
        fake.faults.add("/v1/models", method="GET", body=loop_back, times=5)
        fake.clear_requests()
        with pytest.raises(PaginationError, match="already visited"):
            await client.models.list().collect()
    assert fake.count() == 1


@pytest.mark.replicate_fake(page_size=3)
async def test_next_to_another_host_is_refused_and_never_contacted(
    replicate_fake: FakeReplicate, other: OtherServer
) -> None:
    fake = replicate_fake
    page = {"results": [], "next": other.url("/v1/models?cursor=abc"), "previous": None}
    fake.faults.add("/v1/models", method="GET", body=page)
    async with fake.client() as client:
        with pytest.raises(PaginationError, match="another host"):
            await client.models.list().collect()
        fake.pagination_quirk = "foreign_host"  # http://evil.example/...
        with pytest.raises(PaginationError, match=r"evil\.example"):
            await client.models.list().collect()
        fake.pagination_quirk = "http"  # http://api.replicate.com: not this API's host
        with pytest.raises(PaginationError, match=r"api\.replicate\.com"):
            await client.models.list().collect()
    assert fake.count("GET", "/v1/models") == 3  # one first page each, nothing more
    assert other.requests == []  # no request, so no token, ever reached the other host


@pytest.mark.replicate_fake(page_size=3)
@pytest.mark.parametrize("quirk", ["relative", "null_string"])
async def test_relative_and_null_string_links_walk_like_absolute_ones(
    replicate_fake: FakeReplicate, quirk: Any
) -> None:
    names, requests = await _clean_walk(replicate_fake)
    assert requests >= 3
    replicate_fake.pagination_quirk = quirk
    assert await _clean_walk(replicate_fake) == (names, requests)
    sent = replicate_fake.requests
    assert all(r.headers["authorization"] == f"Bearer {replicate_fake.token}" for r in sent)


async def test_http_next_on_an_https_api_is_upgraded() -> None:
    """Unit level (the fake is plain http): the token never travels in clear text."""
    base = "https://api.example.test/v1"

    def answer(url: URL, headers: Mapping[str, str]) -> tuple[int, bytes]:
        if "cursor" not in url.query:
            nxt = "http://api.example.test/v1/models?cursor=two"
            return 200, json.dumps({"results": [], "next": nxt}).encode()
        return 200, json.dumps({"results": [], "next": None}).encode()

    stub = StubSession(answer)
    async with AsyncReplicate(api_token="t0k", base_url=base, session=as_session(stub)) as c:
        assert await c.models.list().collect() == []
    assert [(str(u), h.get("Authorization")) for _, u, h in stub.sent] == [
        ("https://api.example.test/v1/models", "Bearer t0k"),
        ("https://api.example.test/v1/models?cursor=two", "Bearer t0k"),
    ]


@pytest.mark.replicate_fake(page_size=2)
@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "times": 2},
        {"drop_connection": "after_body"},
        {"truncate_body": True},
        {"status": 429, "retry_after": 1},
    ],
    ids=["503 x2", "reset after read", "truncated", "429"],
)
async def test_fault_mid_walk_loses_and_duplicates_nothing(
    replicate_fake: FakeReplicate, vsleep: ManualClock, fault: dict[str, Any]
) -> None:
    fake = replicate_fake
    fake.add_predictions(9)
    async with fake.client() as client:
        clean = [p.id for p in await client.predictions.list().collect()]
    walked: list[str] = []
    async with fake.client(retry=RetryPolicy(max_retries=3), clock=vsleep) as client:
        async for page in client.predictions.list().pages():
            walked.extend(p.id for p in page.results)
            if len(walked) == 4:  # break the third page
                fake.faults.add("/v1/predictions", method="GET", **fault)
    assert walked == clean
    assert len(set(walked)) == len(walked)


# -- 429 storms -----------------------------------------------------------------------------


async def test_retry_after_above_the_cap_raises_at_once(
    replicate_fake: FakeReplicate, vsleep: ManualClock
) -> None:
    replicate_fake.faults.add("/v1/account", status=429, retry_after=120)
    async with replicate_fake.client(clock=vsleep) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.account.get()
    assert caught.value.retry_after == 120
    assert replicate_fake.count() == 1
    assert vsleep.slept == []


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_429_storm_is_waited_out_whatever_max_retries(
    replicate_fake: FakeReplicate, vsleep: ManualClock, method: str
) -> None:
    """A 429 was not processed, so it is resent (any method) for as long as the retry
    budget allows, not only max_retries times: ten 429s, then the answer."""
    fake = replicate_fake
    path = "/v1/account" if method == "GET" else "/v1/predictions"
    fake.faults.add(path, method=method, status=429, retry_after=2, times=10)
    async with fake.client(retry=RetryPolicy(max_retries=3), clock=vsleep) as client:
        if method == "GET":
            await client.account.get()
        else:
            await client.predictions.create(version="fake/echo", input={})
    assert fake.count(method, path) == 11
    assert len(vsleep.slept) == 10
    assert all(2.0 <= w <= 2.2 for w in vsleep.slept), vsleep.slept


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_429_storm_longer_than_the_budget_raises_at_its_end(
    replicate_fake: FakeReplicate, vsleep: ManualClock, method: str
) -> None:
    """With RetryPolicy.total=10, 429s asking for 2 s are retried while the next wait still
    ends within 10 s of the first attempt, then the last RateLimitError is raised."""
    fake = replicate_fake
    path = "/v1/account" if method == "GET" else "/v1/predictions"
    fake.faults.add(path, method=method, status=429, retry_after=2, times=10)
    async with fake.client(retry=RetryPolicy(total=10), clock=vsleep) as client:
        start = vsleep.monotonic()
        call = (
            client.account.get()
            if method == "GET"
            else client.predictions.create(version="fake/echo", input={})
        )
        with pytest.raises(RateLimitError):
            await call
        assert vsleep.monotonic() - start <= 10
    assert fake.count(method, path) in (4, 5)  # waits of 2-2.2 s at 0, ~2, ~4, ~6(, ~8)


async def test_concurrent_429_storm_each_request_retried_once(
    replicate_fake: FakeReplicate, vsleep: ManualClock
) -> None:
    fake = replicate_fake
    fake.faults.add("/v1/account", status=429, retry_after=1, times=20)
    async with fake.client(clock=vsleep) as client:
        accounts = await asyncio.gather(*(client.account.get() for _ in range(20)))
    assert {a.username for a in accounts} == {"alice"}
    assert fake.count("GET", "/v1/account") == 40  # one 429 and one success each
    retry_waits = [w for w in vsleep.slept if w >= 1.0]
    assert len(retry_waits) == 20
    assert all(w <= 1.1 for w in retry_waits)  # Retry-After plus a jitter of at most 10 %
    # The resends then queue behind the throttle, paced one interval (3000/min) apart: 19
    # queued after the first, none waiting anywhere near another second.
    paced = sorted(w for w in vsleep.slept if w < 1.0)
    assert len(paced) <= 19
    assert all(w <= 0.021 * (k + 1) for k, w in enumerate(paced)), paced


# -- a stream served from another origin: cut, idle, truncated ------------------------------


def _sse(*events: tuple[str | None, str, str]) -> bytes:
    out = b""
    for event_id, event, data in events:
        line = f"event: {event}\n" + (f"id: {event_id}\n" if event_id else "")
        out += (line + f"data: {data}\n\n").encode()
    return out


TOKENS_SSE = [("1:0", "output", "one"), ("1:1", "output", " two"), ("1:2", "output", " three")]


async def _stream_from(other: OtherServer, client: AsyncReplicate, **kwargs: Any) -> list[str]:
    prediction = structure(
        {"id": "p1", "status": "processing", "urls": {"stream": other.url("/sse/p1")}},
        Prediction,
    )
    events = client.predictions.stream(prediction, **kwargs)
    return [f"{e.event}:{e.data}" async for e in events]


@pytest.mark.parametrize("how", ["cut", "idle", "half an event"])
async def test_broken_stream_resumes_losing_and_repeating_nothing(
    other: OtherServer, how: str
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        if len(other.requests) == 1:
            await resp.write(_sse(TOKENS_SSE[0], TOKENS_SSE[1]))
            if how == "cut":
                assert request.transport is not None
                request.transport.abort()
                return resp
            if how == "idle":
                await asyncio.sleep(3600)  # cancelled when the client gives up
            await resp.write(b"event: output\nid: 1:2\ndata: thr")  # no blank line
            return resp
        # The resumed connection repeats the last event seen: it must not be repeated.
        assert request.headers["Last-Event-ID"] == "1:1"
        await resp.write(_sse(TOKENS_SSE[1], TOKENS_SSE[2], (None, "done", "{}")))
        return resp

    other.handler = handler
    async with AsyncReplicate(api_token=SECRET, base_url="https://api.example.test/v1") as c:
        events = await _stream_from(other, c, idle_timeout=0.2, max_reconnects=1)
    assert events == ["output:one", "output: two", "output: three", "done:{}"]
    assert len(other.requests) == 2
    assert [r.headers.get("Authorization") for r in other.requests] == [None, None]


async def test_stream_that_keeps_breaking_gives_up_after_max_reconnects(
    other: OtherServer,
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b": keep-alive comment, then nothing\n\n")
        return resp  # ends without `done`, every time

    other.handler = handler
    async with AsyncReplicate(api_token=SECRET, base_url="https://api.example.test/v1") as c:
        with pytest.raises(StreamError, match="without a done event"):
            await _stream_from(other, c, idle_timeout=1.0, max_reconnects=2)
    assert len(other.requests) == 3
