"""The single request path: resource method -> :meth:`HTTPCore.request` (options, the one
tenacity retry loop for what is safe to resend) -> :meth:`HTTPCore._attempt` (limiter, slot,
aiohttp call, error mapping) -> aiohttp. Streams (SSE, downloads): :meth:`HTTPCore.stream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, Final, NamedTuple
from urllib.parse import quote

import aiohttp
from tenacity import RetryCallState
from yarl import URL

from .._clock import current_deadline
from .._config import ClientConfig, RetryPolicy
from ..exceptions import APIError, MissingTokenError, RateLimitError, request_id_of
from .errors import TRANSPORT_ERRORS, safe_url, status_error, transport_error
from .hooks import (
    Hooks,
    RequestEvent,
    RetryEvent,
    ThrottleEvent,
    emit,
    response_event,
    retry_reason,
)
from .logs import log_request, log_response
from .options import NO_OPTIONS, RequestOptions
from .raw import record, recording
from .response import Response
from .retry import failure_of, may_retry, retrying
from .session import BudgetName, Pool, default_user_agent
from .streaming import intercept
from .throttle import RateLimiter, RequestKind, Throttle, remaining_hint, request_kind
from .tracing import Tracing
from .watch import Timing, Watch, Watchdog, timing

__all__ = ["HTTPCore", "Response", "path"]

logger = logging.getLogger("replicate_async")

_IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "QUERY", "DELETE", "PATCH"})
#: At most this many cached option views and timeouts per core (per-call options repeat).
_MAX_VIEWS: Final = 64
Body = bytes | Callable[[], Awaitable[Any]] | None


#: A segment ``quote`` would return unchanged (ids, owners, names: nearly every one).
_UNRESERVED: Final = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch


def path(*segments: str) -> str:
    """Join path segments, percent-encoding each one (an id can never inject a ``/``)."""
    return "/".join([s if _UNRESERVED(s) else quote(s, safe="") for s in segments])


async def _read_already(response: Response) -> Response:
    return response


class _Retries(NamedTuple):
    """How a first attempt's failure is retried: the policy, and the caller's deadline."""

    policy: RetryPolicy
    deadline: float | None

    def end(self, started: float) -> float:
        """When retries stop: the deadline, else the enclosing one, else ``policy.total``
        after the first attempt started."""
        end = self.deadline if self.deadline is not None else current_deadline()
        return started + self.policy.total if end is None else end


class _Call(NamedTuple):
    """Everything one logical request sends, the same on every attempt."""

    method: str
    url: str
    params: Mapping[str, str] | None
    content: Body
    headers: dict[str, str]
    timeout: aiohttp.ClientTimeout
    idempotent: bool
    kind: RequestKind
    held: bool = False
    #: The attempt's timeouts as the watchdog keeps them (``None``: aiohttp keeps them).
    plan: Timing | None = None


class HTTPCore:
    """Owns the aiohttp session, the connection slots, the rate limiter and retries.

    ``limiter``: any :class:`~replicate_async._core.throttle.RateLimiter`, shared, not owned
    (:meth:`aclose` leaves it open); by default an in-process ``Throttle`` on the clock.
    """

    def __init__(
        self,
        config: ClientConfig,
        token: str | None,
        session: aiohttp.ClientSession | None = None,
        limiter: RateLimiter | None = None,
        hooks: Hooks | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.config = config
        self.hooks: Final = hooks if hooks else None
        #: OpenTelemetry spans per call and per attempt (``AsyncReplicate(tracing=...)``).
        self.tracing: Final = tracing
        #: Options applied to every request of this core (see :meth:`with_options`).
        self.options = NO_OPTIONS
        self.clock: Final = config.clock
        base = config.base_url.rstrip("/") + "/"
        self.base_url: Final = base
        origin = URL(base)
        self._base_origin: Final = (origin.scheme, origin.host, origin.port)
        self._token = token
        self._pool = Pool(config, session)
        self._owns_limiter = limiter is None
        self.limiter: Final[RateLimiter] = limiter or Throttle(config.clock)
        self._observe: Final = getattr(self.limiter, "observe", None)
        #: The limiter's synchronous fast path, if it has one (``Throttle.acquire_now``).
        self._acquire_now: Final = getattr(self.limiter, "acquire_now", None)
        agent = config.user_agent or default_user_agent()
        self._base_headers: Final = {"User-Agent": agent, "Accept": "application/json"}
        #: The same with the token, for the API's own URLs (made once, copied per request).
        self._api_headers: Final = {**self._base_headers, "Authorization": f"Bearer {token}"}
        #: Views made by :meth:`with_options`, by options; per-read-timeout timeouts.
        self._views: dict[RequestOptions, HTTPCore] = {}
        self._read_timeouts: dict[float, aiohttp.ClientTimeout] = {}
        #: Attempt timeouts kept by the client (see :mod:`.watch`), shared by the views.
        self._watchdog: Final = Watchdog()
        self._timings: dict[aiohttp.ClientTimeout, Timing | None] = {}
        self._default_plan: Final = timing(self._pool.timeout)
        #: Counters for observability and benchmarks: requests sent, retries, 429s seen.
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "throttled": 0}

    def with_options(self, options: RequestOptions) -> HTTPCore:
        """A view with ``options`` on top, sharing session, limiter, hooks and counters."""
        views = self._views
        try:
            return views[options]  # the same per-call options again: the same view
        except (KeyError, TypeError):  # new, or mappings inside (not hashable)
            pass
        view = copy.copy(self)
        view.options = self.options.merged(options)
        view._views = {}
        with contextlib.suppress(TypeError):
            if len(views) < _MAX_VIEWS:
                views[options] = view
        return view

    # -- lifecycle --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._pool.closed

    async def open(self) -> None:
        """Create the session now (inside the running loop) instead of at first use."""
        self._pool.session(guarded=False)

    def stop_creating(self) -> None:
        """Send nothing that could create from now on (the client is closing)."""
        self._pool.closing = True

    async def aclose(self) -> None:
        """Close the session (and limiter) if owned; later calls: ClientClosedError."""
        if not self._pool.closed:
            await self._pool.aclose()
            self._watchdog.close()
            if self._owns_limiter:
                await self.limiter.aclose()

    # -- URLs and headers -------------------------------------------------------------

    def url(self, relative: str) -> str:
        """An absolute API URL for a path relative to the base URL."""
        return self.base_url + relative

    def is_api_url(self, url: str) -> bool:
        """Whether ``url`` is on the configured API origin (the only place the token goes).

        Parsed with yarl, exactly as aiohttp parses it to connect: a URL that another
        parser would read as the API's but aiohttp sends elsewhere never gets the token.
        """
        if url.startswith(self.base_url):
            # Our own URLs (base + path): the base ends in "/" after its path, so the
            # scheme, host and port before it are exactly the API's.
            return True
        try:
            parsed = URL(url)
        except Exception:  # ValueError, and IndexError for e.g. "https://[]@" (a yarl bug)
            return False
        return parsed.absolute and (parsed.scheme, parsed.host, parsed.port) == self._base_origin

    def _headers(self, url: str, extra: Mapping[str, str] | None, auth: bool) -> dict[str, str]:
        if auth and self.is_api_url(url):
            if not self._token:
                raise MissingTokenError(
                    "no API token: pass api_token= to AsyncReplicate or set REPLICATE_API_TOKEN"
                )
            if not extra:
                return dict(self._api_headers)
            headers = dict(self._base_headers)
            headers.update(extra)
            headers["Authorization"] = self._api_headers["Authorization"]
            return headers
        headers = dict(self._base_headers)
        if extra:
            headers.update(extra)
        return headers

    # -- the request path -------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        content: Body = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        idempotent: bool | None = None,
        read_timeout: float | None = None,
        retry: bool = True,
        deadline: float | None = None,
        held: bool = False,
        options: RequestOptions | None = None,
    ) -> Coroutine[Any, Any, Response]:
        """Send a request, retrying what is safe to retry, and return the read response
        (awaitable: the arguments are checked at once, the request is sent when awaited).

        ``url`` is absolute, or relative to the base URL. ``content`` is the body, or a
        coroutine function that builds a fresh body per attempt (multipart uploads).
        ``idempotent`` defaults from the method: POST is not, so a POST is only resent when
        it provably was not processed (429, or a connection that never opened).

        Retries stop at ``deadline`` (the clock's ``monotonic()`` time; by default the
        enclosing :func:`~replicate_async._clock.deadline`, e.g. ``run(timeout=...)``'s,
        else ``RetryPolicy.total`` after the first attempt). 429s are retried, behind the
        rate limiter, until then; other failures at most ``max_retries`` times.

        ``held=True`` marks a request the server may hold open (``Prefer: wait``): it takes
        a slot of the separate budget for held requests and streams, never a quick call's.
        ``options`` (:class:`RequestOptions`) go on top of the core's own, merged here once.

        Not a coroutine itself: it hands back the first attempt's (which falls back to the
        retry loop), so an answered call is one coroutine deep below the resource method.
        """
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS
        kind = request_kind(method, url, self.base_url)
        policy, timeout = self.config.retry, None
        opts = self.options if options is None else self.options.merged(options)
        if opts is not NO_OPTIONS:
            params, content, headers = opts.apply(params, content, headers)
            policy, timeout = opts.policy(policy), opts.attempt_timeout(read_timeout)
        send_headers = self._headers(url, headers, auth)
        if (lazy := intercept(self.stream, method, url, params, content, send_headers)) is not None:
            return _read_already(lazy)  # with_streaming_response: a lazy call's response
        timeout = timeout or self._timeout_for(read_timeout)
        # A JSON body or none: the watchdog keeps the timeouts (uploads leave them to aiohttp).
        plan = None if callable(content) else self._timing_of(timeout)
        call = _Call(
            method, url, params, content, send_headers, timeout, idempotent, kind, held, plan
        )
        retries = _Retries(policy, deadline) if retry else None
        if self.tracing is not None:
            return self.tracing.call(call, self._traced(call, retries))
        return self._attempt(call, 1, retries)

    async def _traced(self, call: _Call, retries: _Retries | None) -> Response:
        """The first attempt in its own span, then the retry loop if it may be retried."""
        started = self.clock.monotonic()
        try:
            return await self._try(call, 1)
        except APIError as exc:
            if retries is None or not may_retry(exc, call.idempotent, retries.policy):
                raise
            failure = exc
        return await self._retry(call, failure, retries.policy, retries.end(started))

    async def _try(self, call: _Call, attempt: int) -> Response:
        """One attempt, in its own span when tracing."""
        if self.tracing is None:
            return await self._attempt(call, attempt)
        return await self.tracing.attempt(call, attempt, self._attempt)

    async def _retry(
        self, call: _Call, failure: APIError, policy: RetryPolicy, end: float
    ) -> Response:
        """The one retry loop, tenacity's (:func:`retrying`): wait on the clock, queue behind
        the limiter, resend; until ``end``.

        :meth:`request` sent the first attempt before any loop existed: building and
        iterating an ``AsyncRetrying`` costs about 20-50 µs a request (measured), which the
        requests answered at once (nearly all) should not pay. So tenacity's first round
        re-raises that failure, and tenacity decides on it like on any other.
        """
        last: BaseException = failure

        async def before_sleep(state: RetryCallState) -> None:
            nonlocal last
            last = failure_of(state)
            await self._retrying(call, last, state.upcoming_sleep, state.attempt_number + 1)

        loop = retrying(
            policy, self.clock, idempotent=call.idempotent, end=end, before_sleep=before_sleep
        )
        async for attempt in loop:
            with attempt:
                number = attempt.retry_state.attempt_number
                if number == 1:
                    raise failure
                if self._queue_ends_past(call.kind, end):
                    raise last  # the limiter would hold the resend past the budget
                return await self._try(call, number)
        raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises

    async def _retrying(
        self, call: _Call, failure: BaseException, wait: float, attempt: int
    ) -> None:
        """Count, log and tell the ``on_retry`` hook of a retry about to wait ``wait``."""
        self.stats["retries"] += 1
        url = safe_url(call.url)
        name = type(failure).__name__
        logger.debug("retrying %s %s after %s in %.2fs", call.method, url, name, wait)
        if self.hooks is not None and self.hooks.on_retry is not None:
            event = RetryEvent(call.method, url, retry_reason(failure), wait, attempt, failure)
            await emit(self.hooks.on_retry, event)

    def _queue_ends_past(self, kind: RequestKind, end: float) -> bool:
        """Whether queueing in the limiter would end past ``end`` (when the limiter can say
        how long it would wait: ``delay`` is optional on a :class:`RateLimiter`)."""
        delay = getattr(self.limiter, "delay", None)
        return delay is not None and self.clock.monotonic() + delay(kind) > end

    def _timeout_for(self, read_timeout: float | None) -> aiohttp.ClientTimeout:
        if read_timeout is None:
            return self._pool.timeout
        found = self._read_timeouts.get(read_timeout)
        if found is None:
            timeouts = self.config.timeouts
            found = aiohttp.ClientTimeout(
                total=max(timeouts.total, read_timeout + timeouts.connect),
                sock_connect=timeouts.connect,
                sock_read=read_timeout,
            )
            if len(self._read_timeouts) < _MAX_VIEWS:
                self._read_timeouts[read_timeout] = found
        return found

    async def _attempt(
        self, call: _Call, attempt: int = 1, retries: _Retries | None = None
    ) -> Response:
        """One attempt: the limiter, a slot, the send, the mapping (and the hooks, if any).

        The limiter's ticket is settled exactly once, in the ``finally``: a request
        cancelled or timed out anywhere after ``acquire`` (waiting for a slot, on the wire,
        in a hook) leaves nothing behind in the limiter. With ``retries`` (a first attempt),
        a failure that may be retried goes on to the retry loop, from here: no layer above.
        """
        method, url, params, content, headers, timeout, idempotent, kind, held, plan = call
        pool = self._pool
        hooks = self.hooks
        first = self.clock.monotonic() if retries is not None else 0.0
        acquired = told = False
        try:
            session = pool.session()
            body = await content() if callable(content) else content
            if hooks is not None:
                await self._hooked_acquire(call, attempt, hooks)
            elif self._acquire_now is None or not self._acquire_now(kind):
                await self.limiter.acquire(kind)
            acquired = True
            budget: BudgetName = "held" if held else "quick"
            slots = pool.budgets[budget]
            if not slots.take_now():  # none free: queue for one
                slots = await pool.take_slot(method, url, budget=budget, creates=not idempotent)
            elif not idempotent:
                pool.admit_create(slots)
            logged = logger.isEnabledFor(logging.INFO)
            timed = hooks is not None or logged or recording()
            started = self.clock.monotonic() if timed else 0.0
            if logged:
                log_request(method, safe_url(url), headers, attempt)
            self.stats["requests"] += 1
            proxy, proxy_headers = pool.route(url)
            watch = None if plan is None else self._watchdog.watch(plan)
            try:
                async with session.request(
                    method,
                    url,
                    params=params,
                    data=body,
                    headers=headers,
                    timeout=timeout if plan is None or watch is None else plan.connect_only,
                    allow_redirects=False,
                    proxy=proxy,
                    proxy_headers=proxy_headers,
                ) as resp:
                    if watch is not None:
                        watch.end()  # the headers are in
                    if plan is None or watch is None or resp.content.is_eof():
                        data = await resp.read()
                    else:
                        data = await _rest(resp, plan, watch)
                    # The URL as sent (aiohttp's, stringified, only when a query was added).
                    sent = str(resp.url) if params else url
                    response = Response(method, sent, resp.status, resp.headers, data)
            except asyncio.CancelledError:
                if watch is None or not watch.timed_out():
                    raise
                late = TimeoutError("no answer within the read timeout")
                raise transport_error(late, method, url, creates=not idempotent) from late
            except TRANSPORT_ERRORS as exc:
                raise transport_error(exc, method, url, creates=not idempotent) from exc
            finally:
                if watch is not None:
                    watch.end()
                slots.release()
            if started:
                await self._answered(response, attempt, started, hooks)
            if logged:
                elapsed = self.clock.monotonic() - started
                rid = request_id_of(response.headers)
                log_response(method, safe_url(response.url), response.status, elapsed, rid)
            told = True
            if response.status >= 400:
                raise await self._status_failure(kind, response)
            self._settled(kind, response.headers.get("ratelimit-remaining"))
            return response
        except APIError as exc:
            if retries is None or not may_retry(exc, idempotent, retries.policy):
                raise
            failure = exc
        finally:
            if acquired and not told:
                self._settled(kind, None)
        return await self._retry(call, failure, retries.policy, retries.end(first))

    def _timing_of(self, timeout: aiohttp.ClientTimeout) -> Timing | None:
        if timeout is self._pool.timeout:
            return self._default_plan
        timings = self._timings
        try:
            return timings[timeout]
        except KeyError:
            found = timing(timeout)
            if len(timings) < _MAX_VIEWS:
                timings[timeout] = found
            return found

    async def _answered(
        self, response: Response, attempt: int, started: float, hooks: Hooks | None
    ) -> None:
        """Tell the raw-response recorder and the ``on_response`` hook of an answer."""
        elapsed = self.clock.monotonic() - started
        record(response, elapsed, attempt)
        if hooks is not None and hooks.on_response is not None:
            await emit(hooks.on_response, response_event(response, attempt, elapsed))

    async def _hooked_acquire(self, call: _Call, attempt: int, hooks: Hooks) -> None:
        """``limiter.acquire`` with the throttle and request hooks."""
        clock = self.clock
        before = clock.monotonic()
        await self.limiter.acquire(call.kind)
        now = clock.monotonic()
        url = safe_url(call.url)
        if now > before and hooks.on_throttle is not None:
            await emit(hooks.on_throttle, ThrottleEvent(call.method, url, call.kind, now - before))
        if hooks.on_request is not None:
            await emit(hooks.on_request, RequestEvent(call.method, url, call.kind, attempt))

    def _settled(self, kind: RequestKind, remaining: str | None) -> None:
        observe = self._observe
        if observe is not None:
            observe(kind, remaining_hint(remaining))

    async def _status_failure(self, kind: RequestKind, response: Response) -> APIError:
        error = status_error(
            response.method, response.url, response.status, response.headers, response.content
        )
        if not isinstance(error, RateLimitError):
            self._settled(kind, None)
            return error
        self.stats["throttled"] += 1
        wait = error.retry_after
        # A Retry-After beyond max_retry_after is raised to the caller at once, and the
        # limiter is not told of that 429: no silent hold on the next, unrelated call.
        if wait is None or wait <= self.config.retry.max_retry_after:
            await self.limiter.on_rate_limited(kind, wait)
        else:
            self._settled(kind, None)
        return error

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        read_timeout: float | None = None,
        download: bool = False,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open a response whose body the caller reads incrementally (SSE, downloads).

        Error statuses are raised as typed errors before the body is handed over; the
        connection slot is held until the ``async with`` block exits. Never retried.
        Streams take a slot of the held budget; ``download=True`` (file downloads) one of
        the download budget, so a stream's consumer can download inside its loop.
        """
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        send_headers = self._headers(url, headers, auth)
        session = self._pool.session()
        # No total: a stream lasts as long as it produces; silence is bounded.
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self.config.timeouts.connect,
            sock_read=read_timeout or self.config.timeouts.read,
        )
        await self.limiter.acquire("other")
        try:
            budget: BudgetName = "download" if download else "held"
            slots = await self._pool.take_slot(method, url, budget=budget)
        except BaseException:
            self._settled("other", None)
            raise
        self.stats["requests"] += 1
        tracing = self.tracing
        spanning = (
            tracing.stream(method, url, send_headers) if tracing else contextlib.nullcontext()
        )
        try:
            opening = self._open_stream(session, method, url, send_headers, timeout, params, data)
            with spanning as span:
                async with opening as resp:
                    if span is not None:
                        span.set_attribute("http.response.status_code", resp.status)
                    yield resp
        finally:
            slots.release()

    @contextlib.asynccontextmanager
    async def _open_stream(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: str,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
        params: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        told = False  # the limiter hears of the outcome exactly once, whatever ends this
        proxy, proxy_headers = self._pool.route(url)
        try:
            async with session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=not self.is_api_url(url),
                proxy=proxy,
                proxy_headers=proxy_headers,
            ) as resp:
                if resp.status >= 400:
                    data = await resp.read()
                    failed = Response(method, str(resp.url), resp.status, resp.headers, data)
                    told = True
                    raise await self._status_failure("other", failed)
                told = True
                self._settled("other", resp.headers.get("ratelimit-remaining"))
                yield resp
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, method, url, creates=False) from exc
        finally:
            if not told:
                self._settled("other", None)


async def _rest(resp: aiohttp.ClientResponse, timed: Timing, watch: Watch) -> bytes:
    """The rest of a body still arriving after the headers: at most ``read`` seconds of
    silence between chunks, and within the attempt's ``total``."""
    loop = asyncio.get_running_loop()
    end = watch.due - timed.first + timed.total
    content = resp.content
    chunks: list[bytes] = []
    async with asyncio.timeout_at(min(loop.time() + timed.read, end)) as scope:
        while chunk := await content.readany():
            chunks.append(chunk)
            scope.reschedule(min(loop.time() + timed.read, end))
    return b"".join(chunks)
