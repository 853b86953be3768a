"""Webhook-driven completion: wait for many predictions without polling any of them.

A :class:`WebhookWaiter` runs a small aiohttp receiver, verifies every delivery's
signature, and resolves waiters by prediction id. Its :meth:`~WebhookWaiter.run` creates a
prediction with ``webhook=waiter.url`` (only the ``completed`` event) and waits for that
delivery instead of polling, under the same single deadline and cancel-on-abandon rules as
:meth:`AsyncReplicate.run`. A slow safety-net poll covers a delivery that never comes::

    async with AsyncReplicate() as client, WebhookWaiter.from_client(
        client, port=8080, public_url="https://hooks.example.com/replicate"
    ) as waiter:
        outputs = await asyncio.gather(
            *(waiter.run(client, "owner/model", input=item) for item in items)
        )
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._config import PollPolicy
from ._run import Progress, RunResult, creator, deadline_options, drive, output_of, run_many
from .models import Prediction
from .webhooks import DEFAULT_TOLERANCE, webhook_handler

if TYPE_CHECKING:
    from ._client import AsyncReplicate

__all__ = ["WebhookWaiter"]

#: Completed predictions kept for ids nobody waits for yet (a delivery can beat the
#: create's own response).
DEFAULT_MAX_BUFFERED = 10_000
#: Seconds between safety-net polls of a prediction whose delivery has not come.
DEFAULT_SAFETY_POLL = 60.0
# drive() sleeps this long between "fetches"; the webhook wait is the real pause.
_NO_SLEEP = PollPolicy(initial=1e-6, factor=1.0, maximum=1e-6, jitter=0.0)


class WebhookWaiter:
    """Receives Replicate webhook deliveries and resolves waiters by prediction id.

    - ``secret``: the signing secret (``whsec_...``) or an async callable returning it;
      :meth:`from_client` fetches it once from ``GET /webhooks/default/secret``.
    - ``host`` / ``port`` / ``path``: where the receiver listens (``port=0``: a free port).
    - ``public_url``: the URL Replicate must call, when it differs from the listening
      address (a tunnel or an ingress); default ``http://{host}:{port}{path}``.
    - ``safety_poll``: seconds to wait for a delivery before checking with one ``GET``
      (then waiting again); ``None`` never polls.
    - ``max_buffered``: completed predictions remembered for ids not (yet) waited for.

    Deliveries are verified (bad ones get 400 and are ignored) and de-duplicated by
    ``webhook-id``; only terminal predictions resolve waiters.
    """

    def __init__(
        self,
        secret: str | Callable[[], Awaitable[str]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/replicate-webhook",
        public_url: str | None = None,
        safety_poll: float | None = DEFAULT_SAFETY_POLL,
        tolerance: float | None = DEFAULT_TOLERANCE,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        if safety_poll is not None and not safety_poll > 0:
            raise ValueError("safety_poll must be a positive number of seconds or None")
        if max_buffered < 1:
            raise ValueError("max_buffered must be positive")
        self._secret = secret
        self._host = host
        self._port = port
        self._path = path
        self._public_url = public_url
        self._safety_poll = safety_poll
        self._tolerance = tolerance
        self._max_buffered = max_buffered
        self._done: OrderedDict[str, Prediction] = OrderedDict()
        self._waiters: dict[str, list[asyncio.Future[Prediction]]] = {}
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        #: Counters: deliveries accepted, safety-net polls made.
        self.stats: dict[str, int] = {"deliveries": 0, "safety_polls": 0}

    @classmethod
    def from_client(cls, client: AsyncReplicate, **options: Any) -> WebhookWaiter:
        """A waiter whose secret is fetched (once) through ``client``."""
        cached: list[str] = []
        lock = asyncio.Lock()

        async def secret() -> str:
            async with lock:
                if not cached:
                    cached.append((await client.webhooks.default.secret.get()).key)
            return cached[0]

        return cls(secret, **options)

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The webhook URL to give Replicate (after :meth:`start`)."""
        if self._url is None:
            raise RuntimeError("the WebhookWaiter is not started")
        return self._url

    async def start(self) -> None:
        """Start listening (idempotent)."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_post(
            self._path, webhook_handler(self._secret, self._deliver, tolerance=self._tolerance)
        )
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        self._url = self._public_url or f"http://{shown}:{port}{self._path}"

    async def aclose(self) -> None:
        """Stop listening; pending :meth:`wait` calls are cancelled."""
        runner, self._runner = self._runner, None
        for futures in self._waiters.values():
            for future in futures:
                future.cancel()
        self._waiters.clear()
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> WebhookWaiter:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- deliveries ---------------------------------------------------------------------

    async def _deliver(self, prediction: Prediction) -> None:
        if not prediction.done:
            return
        self.stats["deliveries"] += 1
        futures = self._waiters.pop(prediction.id, None)
        if futures:
            for future in futures:
                if not future.done():
                    future.set_result(prediction)
            return
        self._done[prediction.id] = prediction
        self._done.move_to_end(prediction.id)
        while len(self._done) > self._max_buffered:
            self._done.popitem(last=False)

    async def wait(self, prediction_id: str, *, timeout: float | None = None) -> Prediction:
        """The prediction as delivered by its terminal webhook (``TimeoutError`` after
        ``timeout`` seconds). No request is made: see :meth:`run` for a safety net."""
        found = self._done.pop(prediction_id, None)
        if found is not None:
            return found
        future: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(prediction_id, []).append(future)
        try:
            async with asyncio.timeout(timeout):
                return await future
        finally:
            futures = self._waiters.get(prediction_id)
            if futures is not None and future in futures:
                futures.remove(future)
                if not futures:
                    del self._waiters[prediction_id]

    def _fetcher(self, client: AsyncReplicate) -> Callable[[str], Awaitable[Prediction]]:
        async def fetch(prediction_id: str) -> Prediction:
            try:
                return await self.wait(prediction_id, timeout=self._safety_poll)
            except TimeoutError:
                self.stats["safety_polls"] += 1
                return await client.predictions.get(prediction_id)

        return fetch

    # -- workflows ----------------------------------------------------------------------

    async def run(
        self,
        client: AsyncReplicate,
        ref: str | None = None,
        *,
        input: Mapping[str, Any],
        deployment: str | None = None,
        timeout: float | None = None,
        cancel_after: float | timedelta | str | None = None,
        use_file_output: bool = False,
    ) -> Any:
        """Like :meth:`AsyncReplicate.run`, but completion comes by webhook: one create
        (no ``Prefer: wait`` hold, no polling), then the ``completed`` delivery.

        ``timeout`` is one deadline (the server is told too, via ``Cancel-After``); on
        the deadline or task cancellation the prediction is canceled on the server.
        """
        prediction = await self._run_prediction(
            client,
            ref,
            input=input,
            deployment=deployment,
            timeout=timeout,
            cancel_after=cancel_after,
        )
        return output_of(client._http, prediction, use_file_output)

    async def _run_prediction(
        self,
        client: AsyncReplicate,
        ref: str | None,
        *,
        input: Mapping[str, Any],
        deployment: str | None,
        timeout: float | None,
        cancel_after: float | timedelta | str | None,
    ) -> Prediction:
        _, cancel_after = deadline_options(timeout, None, cancel_after)
        create = creator(
            client,
            ref,
            deployment=deployment,
            input=input,
            wait=None,
            cancel_after=cancel_after,
            webhook=self.url,
            webhook_events_filter=["completed"],
        )
        return await drive(
            create=create,
            fetch=self._fetcher(client),
            cancel=client.predictions.cancel,
            timeout=timeout,
            poll=_NO_SLEEP,
        )

    def run_many(
        self,
        client: AsyncReplicate,
        ref: str | None,
        inputs: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = 32,
        deployment: str | None = None,
        timeout: float | None = None,
        use_file_output: bool = False,
        on_progress: Callable[[Progress], Any] | None = None,
    ) -> AsyncIterator[RunResult]:
        """Like :meth:`AsyncReplicate.run_many`, with completion by webhook."""

        async def run_one(item: Mapping[str, Any]) -> tuple[Prediction | None, Any]:
            prediction = await self._run_prediction(
                client,
                ref,
                input=item,
                deployment=deployment,
                timeout=timeout,
                cancel_after=None,
            )
            return prediction, output_of(client._http, prediction, use_file_output)

        return run_many(run_one, inputs, concurrency=concurrency, on_progress=on_progress)
