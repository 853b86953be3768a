"""The aiohttp session's lifecycle and the connection slots in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import platform
from typing import Final

import aiohttp

from ._config import ClientConfig
from ._errors import safe_url
from ._version import __version__
from .exceptions import APIConnectionError, APITimeoutError, ClientClosedError

__all__ = ["CREATE_GATE", "CreateGate", "Pool", "default_user_agent"]

_UNOPENED, _OPENED, _CLOSED = "unopened", "opened", "closed"


class CreateGate:
    """One run's create, as the workflow driving it sees it: ``sent`` once a request that
    could create has been handed to aiohttp; after ``abandoned`` is set (the run's deadline
    passed, its task was cancelled) such a request not sent yet is refused, never sent."""

    __slots__ = ("abandoned", "sent")

    def __init__(self) -> None:
        self.abandoned = False
        self.sent = False


#: The gate of the run whose create the current task sends (set by the run workflows).
CREATE_GATE: contextvars.ContextVar[CreateGate | None] = contextvars.ContextVar(
    "replicate_async_create_gate", default=None
)


class Pool:
    """One aiohttp session (made lazily in the running loop, or borrowed) and
    ``max_connections`` slots; every request holds a slot while it is on the wire."""

    def __init__(self, config: ClientConfig, session: aiohttp.ClientSession | None) -> None:
        self.config: Final = config
        self._borrowed: Final = session
        self._session = session
        self._state = _UNOPENED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: asyncio.Task[None] | None = None
        #: The connection slots of the current loop (set by :meth:`session`): quick calls
        #: take ``slots``; held creates (``Prefer: wait``) and streams take ``held_slots``,
        #: a budget of their own, so they never starve quick calls.
        self.slots = asyncio.Semaphore(config.max_connections)
        self.held_slots = asyncio.Semaphore(config.max_connections)
        #: Set when the client starts closing: a request that could create something and
        #: has not been sent yet is refused (``ClientClosedError``), never sent to be canceled.
        self.closing = False
        timeouts = config.timeouts
        #: The default per-attempt timeout.
        self.timeout: Final = aiohttp.ClientTimeout(
            total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read
        )

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._state == _CLOSED

    def session(self, *, guarded: bool = True) -> aiohttp.ClientSession:
        """The session for the running loop, made on first use (``ClientClosedError`` after
        :meth:`aclose`). ``guarded``: close it when the loop shuts down, for clients used
        without ``async with``."""
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
        session = self._borrowed or self._new_session(loop, guarded)
        self._session = session
        self._loop = loop
        self.slots = asyncio.Semaphore(self.config.max_connections)
        self.held_slots = asyncio.Semaphore(self.config.max_connections)
        self._state = _OPENED
        return session

    def _new_session(self, loop: asyncio.AbstractEventLoop, guarded: bool) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            # Quick calls and held requests/streams each have max_connections slots.
            limit=2 * self.config.max_connections,
            limit_per_host=0,
            enable_cleanup_closed=False,
        )
        session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        # aiohttp silently resends an idempotent request once when a kept-alive connection
        # turns out dropped; our retry loop decides every resend, so max_retries=N means at
        # most N + 1 requests on the wire. (A borrowed session keeps its own setting.)
        if hasattr(session, "_retry_connection"):
            session._retry_connection = False
        if guarded:
            # Used without ``async with``: close the session when this loop shuts down
            # (asyncio.run cancels leftover tasks), so no "Unclosed session" is left.
            self._guard = loop.create_task(_close_on_cancel(session))
        return session

    async def take_slot(
        self, method: str, url: str, *, held: bool = False, creates: bool = False
    ) -> asyncio.Semaphore:
        """Wait for a free slot (at most ``Timeouts.pool``); release what is returned (the
        semaphore of the loop the slot was taken in). ``held``: from the held budget.
        ``creates``: refused once the client is :attr:`closing`, even after queueing."""
        slots = self.held_slots if held else self.slots
        pool = self.config.timeouts.pool
        if pool is None:
            await slots.acquire()
            return self._unless_closing(slots, creates)
        try:
            async with asyncio.timeout(pool):
                await slots.acquire()
        except TimeoutError as exc:
            raise APITimeoutError(
                f"no free connection within {pool}s (max_connections="
                f"{self.config.max_connections})",
                method=method,
                url=safe_url(url),
                connect_failed=True,
            ) from exc
        return self._unless_closing(slots, creates)

    def _unless_closing(self, slots: asyncio.Semaphore, creates: bool) -> asyncio.Semaphore:
        if not creates:
            return slots
        gate = CREATE_GATE.get()
        if self.closing or (gate is not None and gate.abandoned):
            slots.release()
            if self.closing:
                raise ClientClosedError(
                    "the client is closing, so this request was not sent (nothing was created)"
                )
            raise APIConnectionError(
                "the run was abandoned before its create was sent (nothing was created)",
                connect_failed=True,
            )
        if gate is not None:
            gate.sent = True
        return slots

    async def aclose(self) -> None:
        """Close the session unless borrowed; later use raises :class:`ClientClosedError`."""
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


async def _close_on_cancel(session: aiohttp.ClientSession) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        if not session.closed:
            await session.close()


def default_user_agent() -> str:
    """``replicate-async/<version> aiohttp/<version> python/<version>``."""
    return (
        f"replicate-async/{__version__} aiohttp/{aiohttp.__version__} "
        f"python/{platform.python_version()}"
    )
