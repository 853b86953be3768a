"""Client configuration as frozen value objects.

Override one setting with :func:`attrs.evolve`, e.g.
``attrs.evolve(DEFAULT_TIMEOUTS, read=120)``.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._clock import SYSTEM_CLOCK, Clock
from .exceptions import InvalidArgumentError

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_POOL_TIMEOUT",
    "MAX_DURATION",
    "ClientConfig",
    "PollPolicy",
    "RetryPolicy",
    "Timeouts",
    "positive_seconds",
]

DEFAULT_BASE_URL = "https://api.replicate.com/v1"


#: The longest duration accepted anywhere, in seconds (24 hours): timeouts, waits and
#: ``cancel_after`` (the fake enforces the same ``Cancel-After`` limit).
MAX_DURATION = 24 * 3600

#: ``Timeouts.pool`` by default: five minutes without a single connection slot freed.
DEFAULT_POOL_TIMEOUT = 300.0


def positive_seconds(_instance: object, attribute: attrs.Attribute[float], value: Any) -> None:
    """An attrs validator: ``None``, or a number of seconds in ``(0, MAX_DURATION]``
    (``InvalidArgumentError`` otherwise, ``TypeError`` for a non-number; never an
    ``OverflowError``, whatever the size)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number of seconds, got {value!r:.40}")
    if not 0 < value <= MAX_DURATION:  # NaN and infinities fail too; 10**400 is not converted
        shown = f"{value:.6g}" if isinstance(value, float) or abs(value) < 10**300 else "huge"
        raise InvalidArgumentError(
            f"{attribute.name} must be more than 0 and at most {MAX_DURATION} seconds, got {shown}"
        )


@attrs.frozen
class Timeouts:
    """How long one HTTP attempt may take, in seconds.

    - ``connect``: opening a TCP/TLS connection.
    - ``read``: the longest silence while waiting for response bytes: from the start of an
      attempt to the answer's headers, then between chunks of a body still arriving. Requests
      sent with ``Prefer: wait=N`` raise it to ``N + 5`` automatically.
    - ``total``: one whole attempt, from sending to the last body byte (retries get a fresh one).

    The client keeps ``read`` and ``total`` of API calls itself, on one timer per length
    shared by every call in flight (aiohttp keeps ``connect``, and all three of streams and
    uploads): the result is the same as aiohttp's per-request timers, at a fraction of the
    cost per call.
    - ``pool``: how long a request waiting for a connection slot (all ``max_connections`` of
      its budget busy) waits while *no* slot of that budget is freed: then
      :class:`~replicate_async.PoolTimeoutError`, nothing sent. A queue that moves is never
      cut short (a fan-out of thousands queues as long as its requests keep finishing);
      a stall is (every connection held, e.g. by streams that never end). ``None``: wait
      forever.
    """

    connect: float = attrs.field(default=10.0, validator=positive_seconds)
    read: float = attrs.field(default=60.0, validator=positive_seconds)
    total: float = attrs.field(default=300.0, validator=positive_seconds)
    pool: float | None = attrs.field(default=DEFAULT_POOL_TIMEOUT, validator=positive_seconds)

    @classmethod
    def every(cls, seconds: float) -> Timeouts:
        """``connect``, ``read`` and ``total`` all ``seconds`` (what ``AsyncReplicate(timeout=N)``
        means, as in httpx); ``pool`` keeps its default (a stall bound, not a queue bound,
        so fan-outs still queue). A ``Prefer: wait`` hold still raises the read timeout
        above the hold."""
        return cls(connect=seconds, read=seconds, total=seconds)


@attrs.frozen
class RetryPolicy:
    """When and how long to wait before retrying a failed request.

    What is retried never depends on these numbers, only on safety: 429 on any method;
    5xx, 408, timeouts and dropped connections only for requests that cannot create
    anything twice; a create only when it provably never reached the server.

    - ``max_retries``: resends after failures other than 429 (``0`` disables every retry,
      429s included). With ``max_retries=N`` at most ``N + 1`` such attempts go out.
    - ``backoff_initial`` / ``backoff_max``: retry ``n`` waits a random time drawn
      uniformly from ``[backoff_initial / 2, min(backoff_max, backoff_initial * 2**(n-1))]``;
      a ``Retry-After`` on a 503 is waited instead.
    - ``max_retry_after``: the longest ``Retry-After`` honoured. A 429 asking for longer is
      raised at once (:class:`RateLimitError`, with ``retry_after``) and leaves no hold
      behind: the client's rate limiter is not told of that 429, so the next, unrelated
      call goes out as usual (and, if the limit still holds, gets its own 429).
    - ``total``: the retry budget, counted from the first attempt and including every wait.
      A retry whose wait would end past it is not made. Inside ``run(timeout=...)`` (any
      enclosing deadline) that deadline is the budget instead.

    A 429 proves the request was not processed, so it is retried on any method, queueing
    behind the client's rate limiter (which paces and jitters the resends), for as long as
    the budget allows: 429s do not count against ``max_retries``. Waits run on
    :attr:`ClientConfig.clock`.
    """

    max_retries: int = attrs.field(default=4, validator=attrs.validators.ge(0))
    backoff_initial: float = attrs.field(default=0.5, validator=positive_seconds)
    backoff_max: float = attrs.field(default=8.0, validator=positive_seconds)
    max_retry_after: float = attrs.field(default=60.0, validator=positive_seconds)
    total: float = attrs.field(default=120.0, validator=positive_seconds)


@attrs.frozen
class PollPolicy:
    """How :meth:`run` and ``wait`` poll a prediction that is not finished yet.

    The first poll comes ``initial`` seconds after the create (or last poll); each later
    interval grows by ``factor`` up to ``maximum``, with +/-``jitter`` (a fraction) so that
    thousands of waiters do not poll in lockstep. 429 answers are waited out by the
    request layer (``Retry-After``), not counted as polls.
    """

    initial: float = attrs.field(default=0.5, validator=positive_seconds)
    factor: float = attrs.field(default=1.5, validator=attrs.validators.ge(1.0))
    maximum: float = attrs.field(default=5.0, validator=positive_seconds)
    jitter: float = attrs.field(
        default=0.1, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)]
    )


@attrs.frozen
class ClientConfig:
    """Everything an :class:`~replicate_async.AsyncReplicate` needs besides its token."""

    base_url: str = DEFAULT_BASE_URL
    timeouts: Timeouts = Timeouts()
    retry: RetryPolicy = RetryPolicy()
    poll: PollPolicy = PollPolicy()
    max_connections: int = attrs.field(default=100, validator=attrs.validators.ge(1))
    user_agent: str = ""
    #: Time for retries, polling, stream reconnects, throttling and run deadlines; tests
    #: pass a virtual clock (e.g. :class:`replicate_async.testing.ManualClock`).
    clock: Clock = attrs.field(default=SYSTEM_CLOCK, eq=False, repr=False)
    #: Send requests through the proxies the environment names (``HTTPS_PROXY``,
    #: ``HTTP_PROXY``, ``NO_PROXY``), read once when the client is created.
    trust_env: bool = True
