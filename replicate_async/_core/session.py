"""The aiohttp session's lifecycle and the connection slots in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import platform
from collections import deque
from typing import Final, Literal

import aiohttp

from .._config import ClientConfig
from .._version import __version__
from ..exceptions import APIConnectionError, ClientClosedError, PoolTimeoutError
from .errors import safe_url
from .proxy import NO_PROXY, EnvProxies, Route

__all__ = ["CREATE_GATE", "Budget", "BudgetName", "CreateGate", "Pool", "default_user_agent"]

_UNOPENED, _OPENED, _CLOSED = "unopened", "opened", "closed"

BudgetName = Literal["quick", "held", "download"]
"""Which connection budget a request takes a slot from (see :class:`Pool`)."""


class Budget:
    """``size`` connection slots, handed out first come, first served.

    It counts the slots freed, so a waiter can tell a queue that moves (slots keep being
    freed, its turn will come) from a stall (every slot held and none freed)."""

    __slots__ = ("_free", "_waiters", "freed")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()
        #: Slots released so far.
        self.freed = 0

    def locked(self) -> bool:
        """Whether a slot taken now would have to wait (as ``asyncio.Semaphore.locked``)."""
        return not self._free or bool(self._waiters)

    def take_now(self) -> bool:
        """Take a slot if one is free and nobody is queued; ``False`` otherwise."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self, stall: float | None) -> None:
        """Queue for a slot; ``TimeoutError`` when none is freed for ``stall`` seconds."""
        if self.take_now():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            while True:
                freed = self.freed
                done, _ = await asyncio.wait((waiter,), timeout=stall)
                if done:
                    return
                if self.freed == freed:  # nothing moved for ``stall`` seconds
                    raise TimeoutError
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot while giving up: pass it on
            else:
                waiter.cancel()
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a slot back: to the first waiter in line, else to the free ones."""
        self.freed += 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


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
    """One aiohttp session (made lazily in the running loop, or borrowed) and three
    budgets of ``max_connections`` slots each; every request holds a slot while it is on
    the wire: quick calls take ``quick``; held creates (``Prefer: wait``) and SSE streams
    take ``held``; file downloads take ``download``. So neither starves the others, and a
    stream consumer that downloads files inside its loop never waits on its own budget."""

    def __init__(self, config: ClientConfig, session: aiohttp.ClientSession | None) -> None:
        self.config: Final = config
        self._borrowed: Final = session
        self._session = session
        self._state = _UNOPENED
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: asyncio.Task[None] | None = None
        #: The connection budgets of the current loop (new ones with each session).
        self.budgets = self._new_budgets()
        #: Set when the client starts closing: a request that could create something and
        #: has not been sent yet is refused (``ClientClosedError``), never sent to be canceled.
        self.closing = False
        timeouts = config.timeouts
        #: Proxies from the environment, for a session of our own (a borrowed one keeps
        #: its own ``trust_env``); the request path asks :meth:`route` for each URL.
        self._proxies = EnvProxies() if config.trust_env and session is None else None
        #: The default per-attempt timeout.
        self.timeout: Final = aiohttp.ClientTimeout(
            total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.read
        )

    def route(self, url: str) -> Route:
        """The proxy (and its credentials) a request to ``url`` goes through, if any."""
        return NO_PROXY if self._proxies is None else self._proxies.route(url)

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
        self.budgets = self._new_budgets()
        self._state = _OPENED
        return session

    def _new_budgets(self) -> dict[BudgetName, Budget]:
        size = self.config.max_connections
        return {"quick": Budget(size), "held": Budget(size), "download": Budget(size)}

    def _new_session(self, loop: asyncio.AbstractEventLoop, guarded: bool) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            # Quick calls, held requests/streams and downloads: max_connections slots each.
            limit=3 * self.config.max_connections,
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
        self, method: str, url: str, *, budget: BudgetName = "quick", creates: bool = False
    ) -> Budget:
        """Wait for a free slot of ``budget``; release it on what is returned (the budget of
        the loop it was taken in). :class:`PoolTimeoutError` when no slot of that budget is
        freed for ``Timeouts.pool`` seconds. ``creates``: refused once the client is
        :attr:`closing`, even after queueing."""
        slots = self.budgets[budget]
        if not slots.take_now():
            stall = self.config.timeouts.pool
            try:
                await slots.take(stall)
            except TimeoutError as exc:
                raise PoolTimeoutError(
                    f"no {budget} connection slot was freed for {stall:g}s: all "
                    f"{self.config.max_connections} stayed in use (max_connections)",
                    method=method,
                    url=safe_url(url),
                    connect_failed=True,
                ) from exc
        return self.admit_create(slots) if creates else slots

    def admit_create(self, slots: Budget) -> Budget:
        """A create holding a slot of ``slots`` is checked at the last synchronous point
        before it goes out: refused (the slot given back) when the client is closing or its
        run was abandoned, else marked as sent."""
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
