"""Client-side rate limiting: pace requests so the server's rate limit is rarely hit.

Replicate limits prediction creates to 600 a minute and every other request to 3000 a
minute (low-credit accounts: 6 creates a minute with a burst of 1), with a token bucket
per kind; ``GET /predictions/{id}`` (polling) has a bucket of its own, 60,000 a minute (its
``ratelimit-remaining`` starts at 59999), so a 429 on a list never holds the polls. The
request path calls the client's :class:`RateLimiter` explicitly:

- ``await limiter.acquire(kind)`` before every attempt, first attempts and retries alike;
- ``await limiter.on_rate_limited(kind, retry_after)`` after a 429 (then the request is
  retried, queueing in ``acquire`` again);
- ``limiter.observe(kind, remaining)`` after any other outcome (optional method).

The default, :class:`Throttle`, keeps an estimate of the server's bucket per kind:

- **Unpaced until the limit shows.** Until a response carries ``ratelimit-remaining`` or a
  429 arrives, ``acquire`` returns at once (no bookkeeping but a counter).
- **Synced from the server.** ``ratelimit-remaining: r`` on a response means the server
  had ``r`` tokens left when it admitted that request; requests sent after it and not
  answered yet will take some, so the estimate becomes ``r`` minus those.
- **Paced FIFO.** When the estimate is below one token, each request reserves the next
  slot (one token per ``1 / rate`` seconds, so a crowd never re-fires on one tick) and
  sleeps until it, plus a random jitter of up to ``jitter`` (2 %) of one interval. A queued
  request that is cancelled hands its slot to the one behind it (each later request moves
  up one slot), so the freed slot is used at once and no two requests share a tick.
- **Learning the rate.** The rate starts at the documented limit (600/min creates, 3000/min
  others). A 429's ``Retry-After: R`` with ``R >= 2`` proves one token takes more than
  ``R - 1`` seconds, so the rate drops to ``1 / R`` (the low-credit 6/min gives ``R = 10``).
  Without ``ratelimit-remaining`` hints, every 429 on a paced request slows it by 5 %.
  It recovers towards the documented rate by 25 % per response showing spare tokens
  (``ratelimit-remaining >= 1``), or 10 % per request ending without a 429 when there
  are no hints.
- **A 429 holds the kind.** After a 429 the next slot of that kind is ``Retry-After`` away
  (below 2 s, which servers round up from fractions, one interval); requests already
  waiting are pushed back by as much as the estimate was ahead of the server.

All waiting uses the client's :class:`~replicate_async._clock.Clock`. Each request's ticket
is settled exactly once, whatever ends it (the request path tells ``observe`` in a
``finally``), so cancelled and timed-out requests leave no bookkeeping behind.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections import deque
from typing import Final, Literal, Protocol, runtime_checkable

from .._clock import SYSTEM_CLOCK, Clock

__all__ = [
    "DOCUMENTED_PER_MINUTE",
    "RateLimiter",
    "RequestKind",
    "Throttle",
    "remaining_hint",
    "request_kind",
]

RequestKind = Literal["create", "prediction_get", "other"]
"""Which of the server's buckets a request draws from: creates, prediction GETs (polls),
or everything else. A :class:`RateLimiter` that keeps no separate bucket for a kind should
treat it as ``"other"``."""

#: Replicate's limits, requests per minute (the documented ones; prediction GETs: observed).
DOCUMENTED_PER_MINUTE: Final[dict[RequestKind, float]] = {
    "create": 600.0,
    "prediction_get": 60000.0,
    "other": 3000.0,
}

#: The most digits a ``ratelimit-remaining`` hint may have (larger values are ignored).
_MAX_HINT_DIGITS: Final = 9

#: A bucket whose estimate is at least this many tokens per request in flight (plus one)
#: is far from the limit: requests take a token without reading the clock, and a hint that
#: high sets the estimate without per-ticket bookkeeping (see ``Throttle.observe``).
AMPLE = 2

#: Each request's ticket (its send order within its kind), for the outcome callbacks.
_TICKET: contextvars.ContextVar[int] = contextvars.ContextVar("replicate_async_ticket", default=0)


@runtime_checkable
class RateLimiter(Protocol):
    """What the request path needs from a rate limiter (in-process or shared, e.g. Redis).

    After a 429 the request path itself sleeps the (jittered) ``Retry-After`` before it
    acquires again; ``on_rate_limited`` should hold back the *other* requests of that kind.
    """

    async def acquire(self, kind: RequestKind) -> None:
        """Wait until a request of this kind may be sent."""
        ...

    async def on_rate_limited(self, kind: RequestKind, retry_after: float | None) -> None:
        """A request of this kind was answered 429 (``Retry-After`` in seconds, if any)."""
        ...

    async def aclose(self) -> None:
        """Release whatever the limiter holds."""
        ...


def request_kind(method: str, url: str, base_url: str) -> RequestKind:
    """The bucket a request draws from: ``POST .../predictions`` creates, ``GET
    {base_url}predictions/{id}`` polls (``prediction_get``), anything else ``other``."""
    if method == "POST":
        return "create" if url.endswith("/predictions") else "other"
    if method == "GET" and url.startswith(base_url):
        relative = url[len(base_url) :]
        # ``path()`` percent-encodes the id: one segment, no "/" or "?" inside it.
        if relative.startswith("predictions/") and len(relative) > 12:
            return "other" if "/" in relative[12:] or "?" in relative else "prediction_get"
    return "other"


def remaining_hint(value: str | None) -> int | None:
    """A ``ratelimit-remaining`` header as a count, or ``None`` when absent or unusable.

    Only ASCII digits, at most nine of them: ``²`` (which ``str.isdigit`` accepts) or five
    thousand digits (which ``int`` refuses) are ignored, never an error; a hint can never
    fail the request it came with.
    """
    if value and len(value) <= _MAX_HINT_DIGITS and value.isascii() and value.isdigit():
        return int(value)
    return None


class _Waiter:
    """A queued request: when its reserved slot is due, and its task (to wake it earlier)."""

    __slots__ = ("due", "moved", "task")

    def __init__(self, due: float, task: asyncio.Task[object] | None) -> None:
        self.due = due
        self.task = task
        self.moved = False

    def move_to(self, due: float) -> None:
        """Take an earlier slot: interrupt the sleep (a cancellation that
        :meth:`sleep_until_due` recognises and takes back), so it sleeps again to ``due``."""
        self.due = due
        if self.task is not None and not self.moved:
            self.moved = True
            self.task.cancel()

    async def sleep_until_due(self, clock: Clock) -> None:
        while (left := self.due - clock.monotonic()) > 0:
            try:
                await clock.sleep(left)
            except asyncio.CancelledError:
                if not self.moved or self.task is None:
                    raise
                self.moved = False
                if self.task.uncancel() > 0:  # cancelled for real as well
                    raise


class _Bucket:
    """The estimate of one server-side token bucket, and the queue in front of it."""

    __slots__ = (
        "active",
        "hinted",
        "last_slot",
        "last_sync",
        "live",
        "prior",
        "queue",
        "rate",
        "sent",
        "stamp",
        "tokens",
    )

    def __init__(self, per_minute: float) -> None:
        self.prior = per_minute / 60.0
        self.rate = self.prior  # tokens per second
        self.active = False  # pacing starts at the first sign of the limit
        self.hinted = False  # responses carry ratelimit-remaining
        self.tokens = 0.0  # estimated tokens available to requests not yet sent
        self.stamp = 0.0  # when ``tokens`` was last brought up to date
        self.sent = 0  # tickets handed out
        self.live: dict[int, float] = {}  # tickets sent and not answered: when sent
        self.last_sync = 0  # newest ticket whose outcome set ``tokens``
        self.queue: deque[_Waiter] = deque()  # requests sleeping on a reserved slot, in order
        self.last_slot = 0.0  # when the latest reserved slot is due (delays included)

    @property
    def pending(self) -> int:
        """Requests sleeping on a reserved slot."""
        return len(self.queue)

    def refill(self, now: float) -> None:
        # ``tokens`` is the server's count minus the slots reserved by queued requests. The
        # burst is unknown: the server's count refills up to what it last held, or 1.
        elapsed = now - self.stamp
        if elapsed > 0:
            held = self.tokens + self.pending
            self.tokens = min(max(held, 1.0), held + elapsed * self.rate) - self.pending
            self.stamp = now

    def sent_after(self, ticket: int) -> int:
        count = 0
        for other in reversed(self.live):
            if other <= ticket:
                break
            count += 1
        return count

    def sync(self, ticket: int, tokens: float, now: float) -> bool:
        """Adopt the server's view of the tokens; ``False`` for an outdated answer.

        When the estimate was ahead of the server, the reserved slots move back by the
        time the missing tokens take to refill.
        """
        if ticket < self.last_sync:
            return False  # an older answer than the one already adopted
        self.last_sync = ticket
        self.refill(now)
        if not self.active:
            self.active, self.tokens, self.stamp = True, tokens, now
            return True
        ahead = self.tokens - tokens
        self.tokens = tokens
        if ahead > 0 and self.pending:
            self.delay_slots(ahead / self.rate)
        return True

    def delay_slots(self, seconds: float) -> None:
        for waiter in self.queue:
            waiter.due += seconds
        self.last_slot += seconds

    def leave(self, waiter: _Waiter) -> None:
        """A queued request gave up (cancelled): each one behind it moves up one slot,
        so the next in line takes the freed slot and the last slot is free again."""
        queue = self.queue
        try:
            index = queue.index(waiter)
        except ValueError:  # pragma: no cover - a waiter leaves once
            return
        dues = [w.due for w in queue]
        del queue[index]
        self.tokens += 1
        for position in range(index, len(queue)):
            queue[position].move_to(dues[position])
        if queue:
            self.last_slot = min(self.last_slot, queue[-1].due)


class Throttle:
    """The in-process :class:`RateLimiter` (see the module docstring for the rules).

    ``create_per_minute`` / ``other_per_minute`` are the starting rates (Replicate's
    documented limits); the throttle only ever paces below them. ``jitter`` is the largest
    random extra wait, as a fraction of one interval: queued requests already get distinct
    slots, so it only de-synchronises processes sharing a limit, and it is kept small
    because with a burst of 1 every late arrival is throughput lost. ``rng`` makes the
    jitter reproducible.
    """

    def __init__(
        self,
        clock: Clock = SYSTEM_CLOCK,
        *,
        create_per_minute: float = DOCUMENTED_PER_MINUTE["create"],
        other_per_minute: float = DOCUMENTED_PER_MINUTE["other"],
        prediction_get_per_minute: float = DOCUMENTED_PER_MINUTE["prediction_get"],
        jitter: float = 0.02,
        rng: random.Random | None = None,
    ) -> None:
        rates = (create_per_minute, other_per_minute, prediction_get_per_minute)
        if not (all(rate > 0 for rate in rates) and 0 <= jitter <= 1):
            raise ValueError("rates must be positive and jitter within [0, 1]")
        self.clock = clock
        self.jitter = jitter
        self._random = (rng or random.Random()).random
        self._buckets: dict[str, _Bucket] = {
            "create": _Bucket(create_per_minute),
            "prediction_get": _Bucket(prediction_get_per_minute),
            "other": _Bucket(other_per_minute),
        }
        #: Waits caused by pacing (a request that slept before it was sent).
        self.waits = 0

    def rate(self, kind: RequestKind) -> float:
        """The current pacing rate of ``kind``, in requests per second."""
        return self._buckets[kind].rate

    def delay(self, kind: RequestKind) -> float:
        """How long a request of ``kind`` acquired now would wait (0 when unpaced)."""
        bucket = self._buckets[kind]
        if not bucket.active:
            return 0.0
        bucket.refill(self.clock.monotonic())
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / bucket.rate

    def acquire_now(self, kind: RequestKind) -> bool:
        """The fast path of :meth:`acquire`, without a coroutine: take a ticket at once if
        unpaced or far from the limit (``True``); ``False``: ``acquire`` must wait."""
        bucket = self._buckets[kind]
        if bucket.active and (bucket.tokens < AMPLE * len(bucket.live) + 1 or bucket.pending):
            return False
        if bucket.active:
            bucket.tokens -= 1
        bucket.sent += 1
        bucket.live[bucket.sent] = 0.0  # a ticket, tracked until answered
        _TICKET.set(bucket.sent)
        return True

    async def acquire(self, kind: RequestKind) -> None:
        """Wait for this request's slot (at once while unpaced or tokens remain)."""
        if self.acquire_now(kind):
            return
        bucket = self._buckets[kind]
        clock = self.clock
        bucket.refill(clock.monotonic())
        if bucket.tokens < 1:
            await self._wait_for_slot(bucket, clock)
        else:
            bucket.tokens -= 1
        bucket.sent += 1  # tickets follow the send order, after any wait
        bucket.live[bucket.sent] = clock.monotonic()
        _TICKET.set(bucket.sent)

    async def _wait_for_slot(self, bucket: _Bucket, clock: Clock) -> None:
        interval = 1 / bucket.rate
        slot = clock.monotonic() + (1 - bucket.tokens) * interval
        bucket.last_slot = max(bucket.last_slot, slot)
        jitter = self._random() * self.jitter * interval
        waiter = _Waiter(slot + jitter, asyncio.current_task())
        bucket.tokens -= 1
        bucket.queue.append(waiter)
        self.waits += 1
        try:
            # The slot moves later after a 429 (delay_slots) and earlier when a request
            # ahead leaves the queue (leave): sleep until it is really due.
            await waiter.sleep_until_due(clock)
        except BaseException:
            bucket.leave(waiter)  # cancelled (e.g. a deadline): the next in line moves up
            raise
        bucket.queue.remove(waiter)

    def observe(self, kind: RequestKind, remaining: int | None) -> None:
        """A request of ``kind`` ended without a 429 (``remaining``: its rate-limit hint)."""
        bucket = self._buckets[kind]
        if remaining is None and not bucket.active:  # the fast path: nothing to learn
            bucket.live.pop(_TICKET.get(), None)
            return
        ticket = _TICKET.get()
        sent = bucket.live.pop(ticket, None)
        if remaining is None:
            if bucket.rate < bucket.prior:  # no hints: recover a little per outcome
                bucket.rate = min(bucket.prior, bucket.rate * 1.1)
            return
        bucket.hinted = True
        if remaining >= 1 and bucket.rate < bucket.prior:  # the server has tokens to spare
            bucket.rate = min(bucket.prior, bucket.rate * 1.25)
        in_flight = len(bucket.live)
        if (
            bucket.active
            and remaining >= AMPLE * in_flight + 1
            and not bucket.pending
            and ticket >= bucket.last_sync
        ):
            # Far above what is in flight (the live API's 599 or 2,999 against a few
            # dozen): each request in flight takes one token at most, so the estimate is
            # ``remaining - in_flight`` (never above the exact one below), no clock needed.
            bucket.last_sync = ticket
            bucket.tokens = remaining - in_flight
            return
        now = self.clock.monotonic()
        # The server counted ``remaining`` when it admitted the request, about halfway
        # through the round trip; it has refilled since.
        refilled = (now - sent) / 2 * bucket.rate if sent else 0.0  # 0.0: sent unpaced
        estimate = remaining + refilled - bucket.sent_after(ticket) - bucket.pending
        bucket.sync(ticket, estimate, now)

    async def on_rate_limited(self, kind: RequestKind, retry_after: float | None) -> None:
        """Hold ``kind`` for ``retry_after`` (or one interval) and learn from it."""
        bucket = self._buckets[kind]
        ticket = _TICKET.get()
        paced = bucket.live.pop(ticket, 0.0) > 0.0  # sent while pacing (not in a blind crowd)
        if retry_after is not None and retry_after >= 2:
            bucket.rate = min(bucket.rate, 1 / retry_after)
        elif paced and not bucket.hinted:
            bucket.rate = max(bucket.rate * 0.95, bucket.prior / 1000)
        # Servers round Retry-After up to whole seconds: below 2 s it means "about one
        # interval", and holding a full second per 429 would waste a fast bucket's refill.
        hold = retry_after if retry_after is not None and retry_after >= 2 else 1 / bucket.rate
        # The server has no token now and one in ``hold``; queued requests come first,
        # one interval apart from then on (at the rate just learned).
        now = self.clock.monotonic()
        if bucket.sync(ticket, 1 - hold * bucket.rate - bucket.pending, now) and bucket.pending:
            late = now + hold + (bucket.pending - 1) / bucket.rate - bucket.last_slot
            if late > 0:
                bucket.delay_slots(late)

    async def aclose(self) -> None:
        """Nothing to release for the in-process throttle."""

    def in_flight(self, kind: RequestKind) -> int:
        """Requests of ``kind`` acquired and not settled yet (tickets held)."""
        return len(self._buckets[kind].live)

    def __repr__(self) -> str:
        rates = ", ".join(f"{k}={b.rate * 60:g}/min" for k, b in self._buckets.items())
        return f"Throttle({rates})"
