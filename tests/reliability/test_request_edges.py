"""Edges of the request path, over real sockets: hint headers that cannot be parsed, the
limiter's bookkeeping when requests are cancelled, and connection budgets that must not
deadlock (streams whose consumers download files inside the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from replicate_async import (
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncReplicate,
    PaginationError,
    PollPolicy,
    PoolTimeoutError,
    RateLimitError,
    RetryPolicy,
    Timeouts,
)
from replicate_async._core.throttle import Throttle
from replicate_async.testing import FakeReplicate, ManualClock
from tests.helpers import eventually, tcp_server

from .conftest import SECRET

#: Hint values no parser should choke on: a superscript digit (``str.isdigit`` says yes),
#: more digits than ``int()`` accepts, Arabic-Indic digits, a float, an underscore number.
BAD_HINTS = ["²", "9" * 5000, "١٢", "1.5", "1_000", "-3", "0x10", " ", "nan"]


@pytest.mark.parametrize("hint", BAD_HINTS, ids=lambda v: f"{v[:6]!r}x{len(v)}")
async def test_a_create_answered_with_a_malformed_hint_returns_the_prediction(hint: str) -> None:
    """A 201 carrying ``ratelimit-remaining: ²`` (or 5,000 digits) is a created prediction:
    the caller gets it, with its id, and nothing is created twice."""
    async with FakeReplicate() as fake:
        version = fake.latest_version_id("fake/echo")
        fake.faults.add(
            "/v1/predictions",
            method="POST",
            headers={"ratelimit-remaining": hint, "retry-after": hint},
        )
        async with fake.client() as client:
            prediction = await client.predictions.create(version=version, input={"text": "hi"})
            assert prediction.id in fake.predictions
            got = await client.predictions.get(prediction.id)
        assert got.id == prediction.id
        assert fake.count("POST", "/v1/predictions") == 1


async def test_run_finishes_when_every_answer_carries_malformed_hints() -> None:
    """The whole run (create, polls) with ``ratelimit-remaining: ²`` and 5,000 digits on
    every answer: one create, the output, and the throttle learned nothing wrong."""
    async with FakeReplicate() as fake:
        version = fake.latest_version_id("fake/echo")
        for path in ("/v1/predictions", "/v1/predictions/*"):
            fake.faults.add(path, times=50, headers={"ratelimit-remaining": "²"})
        async with fake.client(poll=PollPolicy(initial=0.01, maximum=0.02)) as client:
            output = await client.run(f"fake/echo:{version}", input={"text": "hi"}, wait=False)
            assert _in_flight(client) == 0
        assert output
        assert fake.count("POST", "/v1/predictions") == 1


@pytest.mark.parametrize(
    "hint",
    ["²", "9" * 5000, "1e400", "nan", "-1", "Sun, 32 Foo 99999"],
    ids=lambda v: f"{v[:6]!r}x{len(v)}",
)
async def test_a_429_with_a_garbage_retry_after_is_still_a_rate_limit_error(hint: str) -> None:
    """An unparsable Retry-After is ignored (the body's ``retry_after`` is used instead)."""
    async with FakeReplicate() as fake:
        fake.faults.add("/v1/account", status=429, times=10, headers={"Retry-After": hint})
        async with fake.client(retry=RetryPolicy(max_retries=0)) as client:
            with pytest.raises(RateLimitError) as caught:
                await client.account.get()
    assert caught.value.retry_after == 1.0  # the fake's body says retry_after: 1


async def test_a_stream_with_a_malformed_hint_still_streams() -> None:
    async with FakeReplicate() as fake:
        version = fake.latest_version_id("fake/echo")
        fake.faults.add("/v1/streams/*", headers={"ratelimit-remaining": "9" * 5000})
        async with fake.client() as client:
            events = [e async for e in client.stream(f"fake/echo:{version}", input={"text": "a"})]
    assert events


async def test_a_download_redirect_to_a_malformed_location_is_a_typed_error(
    tmp_path: Path,
) -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            writer.write(
                b"HTTP/1.1 302 Found\r\nLocation: http://[oops/x\r\nContent-Length: 0\r\n\r\n"
            )
            await writer.drain()
        writer.close()

    async with tcp_server(serve) as port:
        base = f"http://127.0.0.1:{port}/v1"
        async with AsyncReplicate(api_token="r8_x", base_url=base) as client:
            out = client.file_output(f"{base}/files/abc/download")
            with pytest.raises(APIResponseValidationError, match="malformed Location"):
                await out.read()
            with pytest.raises(APIResponseValidationError, match="malformed Location"):
                await out.save(tmp_path / "x")


# -- the limiter's tickets ---------------------------------------------------------------


def _in_flight(client: AsyncReplicate) -> int:
    limiter = client._http.limiter
    assert isinstance(limiter, Throttle)
    return sum(limiter.in_flight(kind) for kind in ("create", "prediction_get", "other"))


async def test_requests_cancelled_mid_flight_leave_no_ticket_behind() -> None:
    """Timeouts and cancellations anywhere after the limiter let a request go (on the
    wire, waiting for a slot) settle its ticket: 200 of each leave the map empty."""
    async with FakeReplicate() as fake:
        fake.faults.add("/v1/account", delay=5.0, times=400)
        client = fake.client(
            retry=RetryPolicy(max_retries=0), max_connections=4, timeout=Timeouts(pool=None)
        )
        async with client:
            for _ in range(25):  # per-attempt timeouts, 8 at once (4 on the wire, 4 queued)
                results = await asyncio.gather(
                    *(client.account.get(timeout=0.01) for _ in range(8)),
                    return_exceptions=True,
                )
                assert all(isinstance(r, APITimeoutError) for r in results), results
            for _ in range(25):  # caller-side cancellation, 8 at once
                tasks = [asyncio.ensure_future(client.account.get()) for _ in range(8)]
                await asyncio.sleep(0.01)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            assert _in_flight(client) == 0
            fake.faults.clear()
            await client.account.get()  # and the client still works
            assert _in_flight(client) == 0


async def test_polls_have_their_own_bucket_so_a_429_on_a_list_does_not_hold_them() -> None:
    """``GET /predictions/{id}`` draws from ``prediction_get``; a 429 (with a long hold)
    on a list holds ``other`` only, so the poll goes out at once."""
    clock = ManualClock(auto_advance=True)
    async with FakeReplicate() as fake:
        version = fake.latest_version_id("fake/echo")
        async with fake.client(clock=clock, retry=RetryPolicy(max_retries=0)) as client:
            prediction = await client.predictions.create(version=version, input={"text": "a"})
            fake.faults.add("/v1/models", method="GET", status=429, retry_after=30)
            with pytest.raises(RateLimitError):
                await client.models.list()
            throttle = client._http.limiter
            assert isinstance(throttle, Throttle)
            assert throttle.delay("other") > 20
            slept = len(clock.slept)
            got = await client.predictions.get(prediction.id)
            assert got.id == prediction.id
            assert clock.slept[slept:] == []  # the poll did not wait behind the list's 429
            assert throttle.delay("prediction_get") == 0


# -- connection budgets -------------------------------------------------------------------


async def test_stream_consumers_saving_files_inside_the_loop_do_not_deadlock(
    tmp_path: Path,
) -> None:
    """max_connections=3 and 3 consumers of stream_output() that save each file inside
    the loop: the downloads take the download budget, not the streams' own."""
    async with FakeReplicate() as fake:
        version = fake.latest_version_id("fake/image")
        async with fake.client(max_connections=3) as client:

            async def consume(n: int) -> list[Path]:
                saved = []
                async for out in client.stream_output(
                    f"fake/image:{version}", input={"prompt": f"p{n}", "num_outputs": 2}
                ):
                    saved.append(await out.save(tmp_path / f"{n}-{len(saved)}.png"))
                return saved

            async with asyncio.timeout(30):
                results = await asyncio.gather(*(consume(n) for n in range(3)))
    assert [len(paths) for paths in results] == [2, 2, 2]
    assert all(p.stat().st_size > 0 for paths in results for p in paths)


async def test_an_exhausted_pool_raises_a_pool_timeout_instead_of_hanging() -> None:
    """Every held slot taken by a stream that never ends: the next stream waits
    ``Timeouts.pool`` with no slot freed, then PoolTimeoutError (nothing sent)."""
    release = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        await writer.drain()
        await release.wait()
        writer.close()

    async with tcp_server(serve) as port:
        client = AsyncReplicate(
            api_token="r8_x",
            base_url=f"http://127.0.0.1:{port}/v1",
            max_connections=2,
            timeout=Timeouts(pool=0.2),
        )
        async with client:
            http = client._http
            async with http.stream("GET", "streams/a"), http.stream("GET", "streams/b"):
                with pytest.raises(PoolTimeoutError) as caught:
                    async with http.stream("GET", "streams/c"):
                        pass  # pragma: no cover - never opened
                assert caught.value.connect_failed
                assert isinstance(caught.value, APITimeoutError)
                assert "max_connections" in str(caught.value)
                release.set()
            assert _in_flight(client) == 0


async def test_a_queue_that_moves_is_not_cut_short_by_the_pool_timeout() -> None:
    """Twenty calls through two slots, each slower than ``Timeouts.pool``: the last one
    queues far longer than the pool timeout, but slots keep being freed, so all succeed."""
    async with FakeReplicate() as fake:
        fake.faults.add("/v1/account", delay=0.05, times=20)
        async with fake.client(max_connections=2, timeout=Timeouts(pool=0.1)) as client:
            accounts = await asyncio.gather(*(client.account.get() for _ in range(20)))
    assert len(accounts) == 20


# -- cursors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor", ["abc?x=1", "../account?x=1", "account", "a/b?c=d#e", "%2e%2e/account", "?x=1"]
)
async def test_a_raw_cursor_is_an_opaque_query_value_on_the_lists_own_path(cursor: str) -> None:
    """``models.list(cursor="abc?x=1")`` asks for ``GET /v1/models?cursor=abc%3Fx%3D1``:
    never ``GET /v1/abc`` (any path on the API host, with the token)."""
    async with FakeReplicate() as fake, fake.client() as client:
        with contextlib.suppress(APIStatusError):  # the fake may refuse the cursor itself
            await client.models.list(cursor=cursor)
    (request,) = fake.requests_matching()
    assert (request.method, request.path) == ("GET", "/v1/models")
    assert request.query == {"cursor": cursor}


@pytest.mark.parametrize(
    "link",
    [
        "{base}/account?cursor=x",
        "{base}/predictions?cursor=x",
        "{base}/models/fake/echo?cursor=x",
        "{base}/models/../account?cursor=x",
        "/v1/account?cursor=x",
        "/account?cursor=x",
        "../account?cursor=x",
    ],
)
async def test_a_next_link_to_another_path_is_never_followed(link: str) -> None:
    async with FakeReplicate(token=SECRET) as fake, fake.client() as client:
        page = {"next": link.format(base=fake.base_url), "previous": None, "results": []}
        fake.faults.add("/v1/models", method="GET", body=page)
        with pytest.raises(PaginationError, match="another path"):
            await client.models.list().collect()
        if not link.startswith(".."):  # (as a cursor, "../account?..." is an opaque value)
            with pytest.raises(PaginationError, match="another path"):
                client.models.list(cursor=page["next"])
    assert [(r.method, r.path) for r in fake.requests_matching()] == [("GET", "/v1/models")]


async def test_saved_next_links_on_the_lists_own_path_still_resume() -> None:
    async with FakeReplicate(page_size=2) as fake, fake.client() as client:
        fake.add_models(5)
        first = await client.models.list()
        assert first.next is not None
        rest = await client.models.list(cursor=first.next).collect()
        everything = await client.models.list().collect()
    assert [m.name for m in first.results + rest] == [m.name for m in everything]


async def test_a_pool_timeout_on_the_request_path_is_raised_not_retried() -> None:
    """One slot, held by a slow call: the next call waits ``Timeouts.pool`` with no slot
    freed and raises PoolTimeoutError, unsent and not requeued by the retry loop."""
    async with FakeReplicate() as fake:
        fake.faults.add("/v1/account", delay=1.0)
        async with fake.client(max_connections=1, timeout=Timeouts(pool=0.1)) as client:
            slow = asyncio.ensure_future(client.account.get())
            await eventually(lambda: fake.count("GET", "/v1/account") == 1)
            with pytest.raises(PoolTimeoutError) as caught:
                await client.hardware.list()
            assert caught.value.url.endswith("/v1/hardware")
            assert client.stats["retries"] == 0
            await slow
            assert _in_flight(client) == 0
        assert fake.count("GET", "/v1/hardware") == 0
