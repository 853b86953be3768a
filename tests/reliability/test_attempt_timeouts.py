"""Attempt timeouts kept by the client's watchdog, over real sockets (the embedded fake).

Quick API calls leave their read and total timeouts to the client's :class:`Watchdog`
(one timer per timeout length), not to aiohttp. These tests check what a user notices:
a slow server is cut short with the documented error after the right number of
attempts; a ``Prefer: wait`` hold is not cut short; the caller's own ``asyncio.timeout``
and cancellation behave as usual; and nothing is kept per request once the calls end.

Retry waits run in virtual time (``vsleep``); the timeouts under test are real and small.
Nothing asserts how long anything took.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from replicate_async import (
    APITimeoutError,
    AsyncReplicate,
    RequestMayHaveSucceededTimeoutError,
    RetryPolicy,
    Timeouts,
)
from replicate_async._core.watch import _SLACK, Watchdog
from replicate_async.models import Account
from replicate_async.testing import FakeReplicate, ManualClock
from tests.helpers import Watched, eventually

from ._calls import ECHO
from ._support import chain

#: How long the faulted server waits before its headers: far beyond every timeout here.
SLOW = 2.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate() as server:
        yield server


def _client(
    fake: FakeReplicate, vsleep: ManualClock, timeouts: Timeouts | None = None, retries: int = 2
) -> AsyncReplicate:
    return fake.client(
        timeout=timeouts or Timeouts(),
        retry=RetryPolicy(max_retries=retries),
        clock=vsleep,
    )


def _watchdog(client: AsyncReplicate) -> Watchdog:
    dog: Watchdog = client._http._watchdog
    return dog


def _lanes(client: AsyncReplicate) -> dict[float, Any]:
    """The client's lanes by timeout length."""
    lanes: dict[float, Any] = _watchdog(client)._lanes
    return lanes


def _assert_idle(client: AsyncReplicate) -> None:
    """No attempt is being watched, and no entry is kept for one that was."""
    for seconds, lane in _lanes(client).items():
        assert (lane.live, len(lane.queue)) == (0, 0), seconds


def _timed_out(error: BaseException) -> bool:
    return any(isinstance(e, TimeoutError) for e in chain(error))


# -- slow headers: cut short, with the documented error --------------------------------------


async def test_a_per_call_timeout_cuts_a_slow_get_short_and_retries_it(
    fake: FakeReplicate, vsleep: ManualClock, watched: list[Watched]
) -> None:
    fault = fake.faults.add("/v1/account", method="GET", delay=SLOW, times=10)
    async with _client(fake, vsleep) as client:
        with pytest.raises(APITimeoutError) as caught:
            await client.account.get(timeout=0.2)
        assert type(caught.value) is APITimeoutError
        assert _timed_out(caught.value)
        assert fake.count("GET", "/v1/account") == 3  # max_retries + 1
        assert fault.hits == 3
        assert len(vsleep.slept) == 2  # two backoff waits (virtual)
        assert [w.timing.first for w in watched] == [0.2] * 3
        assert all(w.watch is not None and w.watch.task is None for w in watched)
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        _assert_idle(client)
        assert _lanes(client)[0.2]._timer is None  # nothing left armed either
        # The client still works, with its own timeouts.
        fault.remove()
        account = await client.account.get()
        assert isinstance(account, Account)
        _assert_idle(client)


async def test_a_per_call_timeout_on_a_slow_create_sends_it_once(
    fake: FakeReplicate, vsleep: ManualClock, watched: list[Watched]
) -> None:
    version = fake.latest_version_id(ECHO)
    fake.faults.add("/v1/predictions", method="POST", delay=SLOW, times=10)
    async with _client(fake, vsleep) as client:
        with pytest.raises(RequestMayHaveSucceededTimeoutError) as caught:
            await client.predictions.create(version=version, input={"text": "hi"}, timeout=0.2)
        assert isinstance(caught.value, APITimeoutError)
        assert _timed_out(caught.value)
        assert "may have created" in str(caught.value)
        assert fake.count("POST", "/v1/predictions") == 1  # never resent: it may have run
        assert vsleep.slept == []
        assert [w.timing.first for w in watched] == [0.2]
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        _assert_idle(client)


async def test_a_prefer_wait_create_is_not_cut_short_at_the_read_timeout(
    fake: FakeReplicate, vsleep: ManualClock, watched: list[Watched]
) -> None:
    """``wait=1``: the headers may take the hold plus 5 s; a server answering after the
    client's read timeout (0.3 s here) but well within that is waited for."""
    version = fake.latest_version_id(ECHO)
    fake.faults.add("/v1/predictions", method="POST", delay=0.8)
    async with _client(fake, vsleep, Timeouts(read=0.3)) as client:
        prediction = await client.predictions.create(version=version, input={"text": "hi"}, wait=1)
        assert prediction.id
        assert fake.count("POST", "/v1/predictions") == 1
        assert [(w.timing.first, w.timing.read) for w in watched] == [(6.0, 6.0)]
        assert 6.0 in _lanes(client)
        _assert_idle(client)
        # The same server delay on a call without a hold is cut short at 0.3 s.
        fake.faults.add("/v1/predictions", method="POST", delay=0.8)
        with pytest.raises(RequestMayHaveSucceededTimeoutError):
            await client.predictions.create(version=version, input={"text": "hi"})
        assert watched[-1].timing.first == 0.3
        _assert_idle(client)


# -- the caller's own timeouts and cancellations ---------------------------------------------


async def test_the_callers_timeout_shorter_than_the_clients_is_the_callers(
    fake: FakeReplicate, vsleep: ManualClock
) -> None:
    fake.faults.add("/v1/account", method="GET", delay=SLOW, times=10)
    async with _client(fake, vsleep, Timeouts(read=5)) as client:
        with pytest.raises(TimeoutError) as caught:
            async with asyncio.timeout(0.2):
                await client.account.get()
        assert not isinstance(caught.value, APITimeoutError)
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        assert fake.count("GET", "/v1/account") == 1
        _assert_idle(client)


async def test_the_clients_timeout_inside_the_callers_is_the_clients(
    fake: FakeReplicate, vsleep: ManualClock
) -> None:
    """An APITimeoutError caught inside the caller's (longer) timeout leaves the task as
    it was: no cancellation pending, the caller's timeout not expired."""
    fake.faults.add("/v1/account", method="GET", delay=SLOW, times=10)
    async with _client(fake, vsleep, Timeouts(read=0.2), retries=0) as client:
        async with asyncio.timeout(30) as scope:
            with pytest.raises(APITimeoutError):
                await client.account.get()
            assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
            await asyncio.sleep(0)  # no cancellation left to be delivered here
        assert not scope.expired()
        assert fake.count("GET", "/v1/account") == 1
        _assert_idle(client)


async def test_the_callers_timeout_due_with_the_clients(
    fake: FakeReplicate, vsleep: ManualClock
) -> None:
    """Both due at about the same time (whichever runs first): the caller gets either its
    own TimeoutError or the client's APITimeoutError, never a stray CancelledError, and
    the task's cancel count is back to zero every time."""
    fake.faults.add("/v1/account", method="GET", delay=SLOW, times=100)
    seen: set[str] = set()
    async with _client(fake, vsleep, Timeouts(read=0.1), retries=0) as client:
        for _ in range(10):
            error: BaseException | None = None
            try:
                async with asyncio.timeout(0.1) as scope:
                    await client.account.get()
            except (TimeoutError, APITimeoutError) as exc:
                error = exc
            assert error is not None
            if isinstance(error, APITimeoutError):
                assert _timed_out(error)
                seen.add("client's")
            else:
                assert scope.expired()
                seen.add("caller's")
            assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
            _assert_idle(client)
    assert seen <= {"caller's", "client's"}
    assert seen


async def test_a_cancelled_request_ends_its_watch(fake: FakeReplicate, vsleep: ManualClock) -> None:
    fake.faults.add("/v1/account", method="GET", delay=SLOW, times=10)
    async with _client(fake, vsleep, Timeouts(read=5)) as client:
        task = asyncio.create_task(client.account.get())
        try:
            await eventually(lambda: fake.count("GET", "/v1/account") == 1)
            assert [lane.live for lane in _lanes(client).values()] == [1]
            assert list(_lanes(client)) == [5]
        finally:
            task.cancel()  # (also when a check above failed: no task left behind)
            with pytest.raises(asyncio.CancelledError):
                await task
        assert task.cancelled()
        _assert_idle(client)


async def test_a_cancellation_the_caller_kept_does_not_turn_a_timeout_into_one(
    fake: FakeReplicate, vsleep: ManualClock
) -> None:
    """A task that once took a cancellation without taking it back (``cancelling()`` stays
    1) still gets the timeout error of a slow request, as with aiohttp's own timers."""
    fake.faults.add("/v1/account", method="GET", delay=SLOW, times=10)
    async with _client(fake, vsleep, Timeouts(read=0.2), retries=0) as client:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.sleep(0)  # taken here, and not given back
        assert task.cancelling() == 1
        with pytest.raises(APITimeoutError) as caught:
            await client.account.get()
        assert _timed_out(caught.value)
        assert task.cancelling() == 1  # as the caller left it
        task.uncancel()
        _assert_idle(client)


async def test_closing_the_client_keeps_the_timeouts_of_requests_on_a_lent_session(
    fake: FakeReplicate,
) -> None:
    """``aclose()`` leaves a session the caller lent open, and a request still in flight on
    it keeps its read timeout: the slow server is cut short, not waited for."""
    fake.faults.add("/v1/account", method="GET", delay=SLOW, times=10)
    async with aiohttp.ClientSession() as session:
        client = fake.client(
            session=session, timeout=Timeouts(read=0.2), retry=RetryPolicy(max_retries=0)
        )
        pending = asyncio.create_task(client.account.get())
        await eventually(lambda: fake.count("GET", "/v1/account") == 1)
        await client.aclose()
        assert not session.closed
        with pytest.raises(APITimeoutError) as caught:
            await pending
        assert _timed_out(caught.value)
        _assert_idle(client)


# -- many requests: nothing kept per request ---------------------------------------------------


async def test_thousands_of_quick_requests_leave_every_lane_empty(
    fake: FakeReplicate, vsleep: ManualClock
) -> None:
    total, concurrency = 2000, 50
    widest = 0  # the most entries a lane held beyond 2 x its live ones
    async with _client(fake, vsleep) as client:
        await client.account.get()
        lane = _lanes(client)[60.0]
        done = 0

        async def worker() -> None:
            nonlocal done, widest
            while done < total:
                done += 1
                account = await client.account.get()
                assert account.username
                widest = max(widest, len(lane.queue) - 2 * lane.live)

        async with asyncio.timeout(120):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        assert client.stats["requests"] == total + 1
        assert list(_lanes(client)) == [60.0]  # one lane served them all
        _assert_idle(client)
        assert widest <= _SLACK + 1
        # The default timeout's plan is made once, up front: nothing was added per request.
        assert client._http._timings == {}


# -- a body still arriving after the headers ---------------------------------------------------

SLOW_BODIES = [
    # (gap between the body's 4 chunks, timeouts, what the caller gets, GETs sent)
    pytest.param(0.05, Timeouts(read=0.5, total=5), "ok", 1, id="within read and total"),
    # The whole body takes longer than the read timeout, each gap well within it: fine
    # (the read bounds silence, as aiohttp's sock_read does, not the whole body).
    pytest.param(0.1, Timeouts(read=0.25, total=5), "ok", 1, id="all > read, each gap within"),
    pytest.param(
        0.15, Timeouts(read=0.5, total=0.3), "timeout", 3, id="each gap within read, all > total"
    ),
    pytest.param(0.3, Timeouts(read=0.1, total=5), "timeout", 3, id="a gap longer than read"),
]


@pytest.mark.parametrize(("gap", "timeouts", "outcome", "sent"), SLOW_BODIES)
async def test_a_slow_body_after_the_headers(
    fake: FakeReplicate,
    vsleep: ManualClock,
    watched: list[Watched],
    gap: float,
    timeouts: Timeouts,
    outcome: str,
    sent: int,
) -> None:
    fake.faults.add("/v1/account", method="GET", slow_body=gap, times=3)
    async with _client(fake, vsleep, timeouts) as client:
        if outcome == "ok":
            account = await client.account.get()
            assert account.username
        else:
            with pytest.raises(APITimeoutError) as caught:
                await client.account.get()
            assert type(caught.value) is APITimeoutError
            assert _timed_out(caught.value)
        assert fake.count("GET", "/v1/account") == sent
        # The headers came at once: each watch ended then; the body had its own deadline.
        assert len(watched) == sent
        assert all(w.watch is not None and not w.watch.fired for w in watched)
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        _assert_idle(client)


async def test_a_create_whose_body_outlasts_the_total_is_not_resent(
    fake: FakeReplicate, vsleep: ManualClock
) -> None:
    version = fake.latest_version_id(ECHO)
    async with fake.client() as probe:
        before = len(await probe.predictions.list().collect())
    fake.faults.add("/v1/predictions", method="POST", slow_body=0.15, times=3)
    async with _client(fake, vsleep, Timeouts(read=0.5, total=0.3)) as client:
        with pytest.raises(RequestMayHaveSucceededTimeoutError) as caught:
            await client.predictions.create(version=version, input={"text": "hi"})
        assert _timed_out(caught.value)
        assert fake.count("POST", "/v1/predictions") == 1
        _assert_idle(client)
    async with fake.client() as probe:  # it did create (the handler ran): exactly once
        assert len(await probe.predictions.list().collect()) == before + 1
