"""The single request path: session lifecycle, retries, one send, error mapping, decoding.

resource method -> :meth:`HTTPCore.request` (retry, throttle) -> :meth:`HTTPCore._send_once`
(connection slot, aiohttp call, error mapping) -> aiohttp. Streaming bodies (SSE, file
downloads) use :meth:`HTTPCore.stream`, which shares the slot, headers and error mapping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
)
from yarl import URL

from ._config import ClientConfig
from ._converter import StructureError, loads
from ._retry import is_retryable, parse_retry_after, retry_delay
from .exceptions import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    MissingTokenError,
    RateLimitError,
    RequestMayHaveSucceededError,
    status_error_class,
)

__all__ = ["HTTPCore", "Response", "path"]

logger = logging.getLogger("replicate_async")

_IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "QUERY", "DELETE", "PATCH"})
_UNOPENED, _OPENED, _CLOSED = "unopened", "opened", "closed"
_MAX_ERROR_TEXT = 2048
#: A throttled request re-checks the hold this many times before going anyway.
_MAX_THROTTLE_WAITS = 4
#: The longest window (s) over which throttled requests are spread when a hold ends.
_MAX_SPREAD = 2.0


def path(*segments: str) -> str:
    """Join path segments, percent-encoding each one (an id can never inject a ``/``)."""
    return "/".join(quote(segment, safe="") for segment in segments)


@attrs.frozen(slots=True)
class Response:
    """A fully read HTTP response."""

    method: str
    url: str
    status: int
    headers: CIMultiDictProxy[str]
    content: bytes

    def json(self) -> Any:
        """The body decoded as JSON, or :class:`APIResponseValidationError`."""
        try:
            return loads(self.content)
        except ValueError as exc:
            raise APIResponseValidationError(
                "the response body is not valid JSON",
                method=self.method,
                url=_safe_url(self.url),
                status=self.status,
                body=self.content[:_MAX_ERROR_TEXT].decode(errors="replace"),
            ) from exc

    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.content.decode(errors="replace")


class HTTPCore:
    """Owns the aiohttp session, the connection slots, retries and throttling."""

    def __init__(
        self,
        config: ClientConfig,
        token: str | None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.config = config
        base = config.base_url.rstrip("/") + "/"
        self.base_url: Final = base
        origin = URL(base)
        self._base_origin: Final = (origin.scheme, origin.host, origin.port)
        self._token = token
        self._borrowed = session
        self._session: aiohttp.ClientSession | None = session
        self._state = _UNOPENED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._guard: asyncio.Task[None] | None = None
        self._blocked_until: dict[str, float] = {}
        timeouts = config.timeouts
        self._timeout = aiohttp.ClientTimeout(
            total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
        agent = config.user_agent or _default_user_agent()
        self._base_headers: Final = {"User-Agent": agent, "Accept": "application/json"}
        #: Counters for observability and benchmarks: requests sent, retries made.
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "throttled": 0}

    # -- lifecycle --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._state == _CLOSED

    async def open(self) -> None:
        """Create the session now (inside the running loop) instead of at first use."""
        self._ensure_session(guarded=False)

    async def aclose(self) -> None:
        """Close the session if we own it; later calls raise :class:`ClientClosedError`."""
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        guard, self._guard = self._guard, None
        if guard is not None and not guard.done():
            guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guard
        session, self._session = self._session, None
        if session is not None and session is not self._borrowed and not session.closed:
            await session.close()

    def _ensure_session(self, *, guarded: bool = True) -> aiohttp.ClientSession:
        if self._state == _CLOSED:
            raise ClientClosedError("this AsyncReplicate client is closed; create a new one")
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and self._loop is loop:
            return session
        # When the previous loop ended (e.g. a second asyncio.run()), its guard task closed
        # the session as that loop shut down, so a fresh one is made for this loop.
        old_loop = self._loop
        if (
            session is not None
            and self._borrowed is None
            and old_loop is not None
            and not old_loop.is_closed()
        ):
            raise RuntimeError("this AsyncReplicate client is in use by another running event loop")
        if self._borrowed is not None:
            session = self._borrowed
        else:
            connector = aiohttp.TCPConnector(
                limit=self.config.max_connections, limit_per_host=0, enable_cleanup_closed=False
            )
            session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
            if guarded:
                # Used without ``async with``: close the session when this loop shuts down
                # (asyncio.run cancels leftover tasks), so no "Unclosed session" is left.
                self._guard = loop.create_task(_close_on_cancel(session))
        self._session = session
        self._loop = loop
        self._slots = asyncio.Semaphore(self.config.max_connections)
        self._blocked_until = {}
        self._state = _OPENED
        return session

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
        headers = dict(self._base_headers)
        if extra:
            headers.update(extra)
        if auth and self.is_api_url(url):
            if not self._token:
                raise MissingTokenError(
                    "no API token: pass api_token= to AsyncReplicate or set REPLICATE_API_TOKEN"
                )
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    # -- the request path -------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | Callable[[], Awaitable[Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        idempotent: bool | None = None,
        read_timeout: float | None = None,
        retry: bool = True,
    ) -> Response:
        """Send a request, retrying what is safe to retry, and return the read response.

        ``url`` is absolute, or relative to the base URL. ``content`` is the body, or a
        coroutine function that builds a fresh body per attempt (multipart uploads). ``idempotent``
        defaults from the method: POST is not, so a POST is only resent when it provably
        was not processed (429, or a connection that never opened).
        """
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        if idempotent is None:
            idempotent = method in _IDEMPOTENT_METHODS
        send_headers = self._headers(url, headers, auth)
        timeout = self._timeout_for(read_timeout)
        kind = "default" if idempotent else "create"
        try:
            return await self._send_once(method, url, params, content, send_headers, timeout, kind)
        except APIError as first:
            if not retry or not self._retry_allowed(first, idempotent):
                raise
            failure = first

        policy = self.config.retry
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_retries) | stop_after_delay(policy.total),
            retry=retry_if_exception(lambda exc: self._retry_allowed(exc, idempotent)),
            wait=self._tenacity_wait,
            sleep=policy.sleep,
            before=self._count_retry,
            reraise=True,
        )
        delay = retry_delay(failure, 1, policy)
        logger.debug(
            "retrying %s %s after %s in %.2fs",
            method,
            _safe_url(url),
            type(failure).__name__,
            delay,
        )
        await policy.sleep(delay)
        async for attempt in retrying:
            with attempt:
                # A retry already waited what the server asked (it probes the limit for the
                # others), so it does not queue behind the throttle again.
                return await self._send_once(
                    method, url, params, content, send_headers, timeout, kind, throttle=False
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_allowed(self, exc: BaseException, idempotent: bool) -> bool:
        if self.config.retry.max_retries == 0 or not is_retryable(exc, idempotent=idempotent):
            return False
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            # A wait longer than we are willing to sleep is the caller's decision.
            return exc.retry_after <= self.config.retry.max_retry_after
        return True

    def _tenacity_wait(self, state: RetryCallState) -> float:
        # tenacity's attempt 1 is our first retry, so this wait precedes retry n + 1.
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is None:
            return 0.0
        return retry_delay(exc, state.attempt_number + 1, self.config.retry)

    def _count_retry(self, _state: RetryCallState) -> None:
        self.stats["retries"] += 1

    def _timeout_for(self, read_timeout: float | None) -> aiohttp.ClientTimeout:
        if read_timeout is None:
            return self._timeout
        timeouts = self.config.timeouts
        return aiohttp.ClientTimeout(
            total=max(timeouts.total, read_timeout + timeouts.connect),
            sock_connect=timeouts.connect,
            sock_read=read_timeout,
        )

    async def _send_once(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        content: bytes | Callable[[], Awaitable[Any]] | None,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
        kind: str,
        *,
        throttle: bool = True,
    ) -> Response:
        session = self._ensure_session()
        body = await content() if callable(content) else content
        # ``_slot`` and ``_translate_errors`` inlined: the hot path builds no context-manager
        # objects (each costs ~1.6 us a request).
        slots = self._slots
        assert slots is not None
        await self._acquire_when_allowed(slots, method, url, kind if throttle else None)
        try:
            self.stats["requests"] += 1
            try:
                async with session.request(
                    method,
                    url,
                    params=params,
                    data=body,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                ) as resp:
                    data = await resp.read()
                    response = Response(method, str(resp.url), resp.status, resp.headers, data)
            except APIError:
                raise
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise self._translated(exc, method, url, creates=kind == "create") from exc
        finally:
            slots.release()
        if response.status >= 400:
            raise self._status_error(response, kind)
        return response

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
        read_timeout: float | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Open a response whose body the caller reads incrementally (SSE, downloads).

        Error statuses are raised as typed errors before the body is handed over; the
        connection slot is held until the ``async with`` block exits.
        """
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        send_headers = self._headers(url, headers, auth)
        session = self._ensure_session()
        async with self._slot(method, url, "default"):
            self.stats["requests"] += 1
            with self._translate_errors(method, url, creates=False):
                async with session.request(
                    method,
                    url,
                    headers=send_headers,
                    # No total: a stream lasts as long as it produces; silence is bounded.
                    timeout=aiohttp.ClientTimeout(
                        total=None,
                        sock_connect=self.config.timeouts.connect,
                        sock_read=read_timeout or self.config.timeouts.read,
                    ),
                    allow_redirects=not self.is_api_url(url),
                ) as resp:
                    if resp.status >= 400:
                        data = await resp.read()
                        raise self._status_error(
                            Response(method, str(resp.url), resp.status, resp.headers, data),
                            "default",
                        )
                    yield resp

    @contextlib.asynccontextmanager
    async def _slot(self, method: str, url: str, kind: str | None) -> AsyncIterator[None]:
        """Hold one of ``max_connections`` slots, honouring a throttle of this ``kind``.

        The throttle is checked again once a slot is free: a 429 may have arrived while
        this request queued. A throttled request gives its slot back while it waits.
        """
        slots = self._slots
        assert slots is not None
        await self._acquire_when_allowed(slots, method, url, kind)
        try:
            yield
        finally:
            slots.release()

    async def _acquire_when_allowed(
        self, slots: asyncio.Semaphore, method: str, url: str, kind: str | None
    ) -> None:
        if kind is not None:
            waited = 0.0
            for _ in range(_MAX_THROTTLE_WAITS):
                waited = await self._wait_if_throttled(kind, waited)
                await self._acquire(slots, method, url)
                if self._blocked_until.get(kind, 0.0) <= waited:
                    return  # no newer hold arrived while this request queued
                slots.release()
        await self._acquire(slots, method, url)

    async def _acquire(self, slots: asyncio.Semaphore, method: str, url: str) -> None:
        pool = self.config.timeouts.pool
        if pool is None:
            await slots.acquire()
            return
        try:
            async with asyncio.timeout(pool):
                await slots.acquire()
        except TimeoutError as exc:
            raise APITimeoutError(
                f"no free connection within {pool}s (max_connections="
                f"{self.config.max_connections})",
                method=method,
                url=_safe_url(url),
                connect_failed=True,
            ) from exc

    async def _wait_if_throttled(self, kind: str, waited: float) -> float:
        """Sleep out a hold of this kind newer than ``waited``; return the hold's end."""
        until = self._blocked_until.get(kind, 0.0)
        if until <= waited:
            return waited
        delay = until - asyncio.get_running_loop().time()
        if delay > 0:
            self.stats["throttled"] += 1
            # Spread the waiters over a short window so they do not all return at once
            # and trip the limit again.
            spread = min(_MAX_SPREAD, delay * 0.5)
            await self.config.retry.sleep(delay + random.uniform(0.0, spread))
        return until

    @contextlib.contextmanager
    def _translate_errors(self, method: str, url: str, *, creates: bool) -> Iterator[None]:
        """Map every aiohttp/asyncio/OS failure to our exception tree, chained."""
        try:
            yield
        except APIError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self._translated(exc, method, url, creates=creates) from exc

    def _translated(self, exc: BaseException, method: str, url: str, *, creates: bool) -> APIError:
        """The error of our tree that an aiohttp/asyncio/OS failure becomes."""
        _redact(exc)
        shown = _safe_url(url)
        if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
            # The connection never opened: the request provably did not reach the server.
            cls = APITimeoutError if isinstance(exc, TimeoutError) else APIConnectionError
            return cls(
                f"could not connect: {_describe(exc)}",
                method=method,
                url=shown,
                connect_failed=True,
            )
        timed_out = isinstance(exc, TimeoutError)
        what = "timed out" if timed_out else f"connection failed: {_describe(exc)}"
        if creates:
            return RequestMayHaveSucceededError(
                f"the request {what} after it was sent; the server may have created the "
                "resource, so it was not retried (list recent predictions or trainings "
                "to check)",
                method=method,
                url=shown,
            )
        cls = APITimeoutError if timed_out else APIConnectionError
        return cls(what, method=method, url=shown)

    def _status_error(self, response: Response, kind: str) -> APIStatusError:
        body: Any
        content = response.content
        if content.lstrip()[:1] in (b"{", b"["):
            try:
                body = loads(content)
            except ValueError:
                body = content[:_MAX_ERROR_TEXT].decode(errors="replace")
        else:
            body = content[:_MAX_ERROR_TEXT].decode(errors="replace")
        problem = body if isinstance(body, Mapping) else {}
        title, detail = problem.get("title"), problem.get("detail")
        parts = [p for p in (title, detail) if isinstance(p, str) and p]
        message = ": ".join(parts) if parts else _reason(response.status)
        cls = status_error_class(response.status)
        kwargs: dict[str, Any] = {
            "method": response.method,
            "url": _safe_url(response.url),
            "status": response.status,
            "headers": response.headers,
            "body": body,
        }
        if cls is RateLimitError:
            retry_after = parse_retry_after(response.headers, body)
            if retry_after is not None:
                # Cooperative throttling: hold new requests of this kind until then.
                loop = asyncio.get_running_loop()
                until = loop.time() + min(retry_after, self.config.retry.max_retry_after)
                self._blocked_until[kind] = max(self._blocked_until.get(kind, 0.0), until)
            return RateLimitError(message, retry_after=retry_after, **kwargs)
        return cls(message, **kwargs)


def decode_model(response: Response, build: Callable[[Any], Any]) -> Any:
    """Decode a response body and build a model, mapping shape errors to our tree."""
    data = response.json()
    try:
        return build(data)
    except StructureError as exc:
        raise APIResponseValidationError(
            f"unexpected response shape: {exc}",
            method=response.method,
            url=_safe_url(response.url),
            status=response.status,
            body=data,
        ) from exc


async def _close_on_cancel(session: aiohttp.ClientSession) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        if not session.closed:
            await session.close()


def _redact(exc: BaseException) -> None:
    """Blank the token in aiohttp's copy of the request headers kept by an error chain.

    ``ClientResponseError`` (a malformed or unexpected response) holds ``request_info``,
    whose repr shows every header sent: chained under our error, it would print the token.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        info = getattr(current, "request_info", None)
        if isinstance(info, aiohttp.RequestInfo) and "Authorization" in info.headers:
            headers = CIMultiDict(info.headers)
            headers["Authorization"] = "<redacted>"
            clean = aiohttp.RequestInfo(
                info.url, info.method, CIMultiDictProxy(headers), info.real_url
            )
            current.request_info = clean  # type: ignore[attr-defined]
            current.args = tuple(clean if arg is info else arg for arg in current.args)
        current = current.__cause__ or current.__context__


def _safe_url(url: str) -> str:
    """The URL without its query string (which may hold signatures) for messages."""
    return url.split("?", 1)[0]


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "..."


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _default_user_agent() -> str:
    from . import __version__

    return (
        f"replicate-async/{__version__} aiohttp/{aiohttp.__version__} "
        f"python/{platform.python_version()}"
    )
