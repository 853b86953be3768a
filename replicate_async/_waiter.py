"""Webhook-driven completion: wait for many predictions without polling any of them.

A :class:`WebhookWaiter` verifies every delivery's signature, de-duplicates it and resolves
waiters by prediction id, through a :class:`~replicate_async._workflows.bus.CompletionBus` (in
memory by default; a shared one lets a fleet share deliveries). Feed it from any framework
with :meth:`~WebhookWaiter.handle`, or let it listen on its own port. Its
:meth:`~WebhookWaiter.run` creates a prediction with ``webhook=waiter.url`` (only the
``completed`` event) and waits for that delivery instead of polling, under the same single
deadline and cancel-on-abandon rules as :meth:`AsyncReplicate.run`. A slow safety-net poll
covers a delivery that never comes::

    async with AsyncReplicate() as client, WebhookWaiter.from_client(
        client, port=8080, public_url="https://hooks.example.com/replicate"
    ) as waiter:
        outputs = await asyncio.gather(
            *(waiter.run(client, "owner/model", input=item) for item in items)
        )
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ._clock import Clock, deadline
from ._converter import loads, structure
from ._workflows.bus import CompletionBus, MemoryBus
from ._workflows.drive import OnCreated
from ._workflows.run_many import Progress, RunResult
from ._workflows.runner import Runner, deadline_options
from ._workflows.stream import PredictionStream
from .exceptions import ClientClosedError, InvalidArgumentError, WebhookVerificationError
from .models import Prediction
from .webhooks import DEFAULT_TOLERANCE, parse_prediction, verify

if TYPE_CHECKING:
    from ._client import AsyncReplicate

__all__ = ["WebhookWaiter"]

_log = logging.getLogger("replicate_async")

#: Completed predictions kept for ids nobody waits for yet (a delivery can beat the
#: create's own response).
DEFAULT_MAX_BUFFERED = 10_000
#: Seconds between safety-net polls of a prediction whose delivery has not come.
DEFAULT_SAFETY_POLL = 60.0
#: The largest delivery body the waiter's own listener accepts (a completed prediction
#: carries its whole output, logs included), in bytes; a bigger one is answered 413.
MAX_DELIVERY_BYTES = 32 * 1024 * 1024


class WebhookWaiter:
    """Receives Replicate webhook deliveries and resolves waiters by prediction id.

    - ``secret``: the signing secret (``whsec_...``) or an async callable returning it;
      :meth:`from_client` fetches it once from ``GET /webhooks/default/secret``.
    - ``listen``: run a small receiver of its own (the default), on ``host`` / ``port`` /
      ``path`` (``port=0``: a free port). ``listen=False`` never binds a port: route your
      app's webhook endpoint to :meth:`handle`, and pass its ``public_url``.
    - ``public_url``: the URL Replicate must call, when it differs from the listening
      address (a tunnel or an ingress); default ``http://{host}:{port}{path}``.
    - ``safety_poll``: seconds to wait for a delivery before checking with one ``GET``
      (then waiting again); ``None`` never polls.
    - ``bus``: where deliveries meet waiters (a :class:`CompletionBus`); default an
      in-process one keeping ``max_buffered`` predictions nobody waits for yet.

    Deliveries are verified (bad ones get 400 and are ignored) and de-duplicated by the
    ``webhook-id`` their signature covers; only terminal predictions resolve waiters. The
    waiter's own listener accepts bodies up to :data:`MAX_DELIVERY_BYTES` (32 MiB).
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
        listen: bool = True,
        bus: CompletionBus | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise InvalidArgumentError("path must start with '/'")
        if safety_poll is not None and not safety_poll > 0:
            raise InvalidArgumentError("safety_poll must be a positive number of seconds or None")
        if max_buffered < 1:
            raise InvalidArgumentError("max_buffered must be positive")
        if not listen and not public_url:
            raise InvalidArgumentError(
                "listen=False needs public_url= (the URL your app receives on)"
            )
        self._secret = secret
        self._host = host
        self._port = port
        self._path = path
        self._public_url = public_url
        self._safety_poll = safety_poll
        self._tolerance = tolerance
        self._listen = listen
        self._own_bus = bus is None
        self._bus: CompletionBus = bus if bus is not None else MemoryBus(max_buffered=max_buffered)
        self._runner: web.AppRunner | None = None
        self._url: str | None = None if listen else public_url
        self._closed = asyncio.Event()
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
        """The webhook URL to give Replicate (after :meth:`start` when listening)."""
        if self._url is None:
            raise RuntimeError("the WebhookWaiter is not started")
        return self._url

    async def start(self) -> None:
        """Start listening (idempotent; nothing to do with ``listen=False``)."""
        if self._runner is not None or not self._listen:
            return
        app = web.Application(client_max_size=MAX_DELIVERY_BYTES)
        app.router.add_post(self._path, self._aiohttp_handler)
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
        """Stop listening; pending waits fail with :class:`ClientClosedError` (and their
        runs are canceled on the server)."""
        self._closed.set()
        runner, self._runner = self._runner, None
        if self._own_bus:
            await self._bus.aclose()
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

    async def handle(self, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """Process one delivery from any web framework; return ``(status, text)`` to answer.

        ``headers`` is any mapping of the request's headers, ``body`` its raw bytes. A
        delivery that fails verification gets ``400``; a repeated ``webhook-id`` gets
        ``200`` without being processed again; a terminal prediction resolves its waiters.
        """
        key = self._secret if isinstance(self._secret, str) else await self._secret()
        try:
            msg_id = verify(headers, body, key, tolerance=self._tolerance)
            prediction = parse_prediction(body)
        except WebhookVerificationError as exc:
            _log.warning("rejected a webhook delivery: %s", exc)
            return 400, "invalid webhook delivery"
        # The id the signature covers, never another header's: a replay is a duplicate.
        if not await self._bus.first_delivery(msg_id):
            return 200, "duplicate delivery"
        if prediction.done:
            self.stats["deliveries"] += 1
            await self._bus.publish(loads(body))
        return 200, "ok"

    async def _aiohttp_handler(self, request: web.Request) -> web.Response:
        status, text = await self.handle(request.headers, await request.read())
        return web.Response(status=status, text=text)

    async def wait(self, prediction_id: str, *, timeout: float | None = None) -> Prediction:
        """The prediction as delivered by its terminal webhook (``TimeoutError`` after
        ``timeout`` seconds, :class:`ClientClosedError` if the waiter closes first). No
        request is made: see :meth:`run` for a safety net."""
        async with asyncio.timeout(timeout):
            return await self._wait(prediction_id)

    async def _wait(self, prediction_id: str) -> Prediction:
        if self._closed.is_set():
            raise ClientClosedError("the WebhookWaiter is closed")
        waiting = asyncio.ensure_future(self._bus.wait(prediction_id))
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({waiting, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not waiting.done():
                waiting.cancel()
        if not waiting.done() or waiting.cancelled():
            raise ClientClosedError("the WebhookWaiter was closed while waiting")
        result: Prediction = structure(dict(waiting.result()), Prediction)
        return result

    def _advance(self, runner: Runner) -> Callable[[Prediction], Awaitable[Prediction]]:
        """The drive strategy: wait for the delivery; past ``safety_poll``, one ``GET``."""
        clock: Clock = runner.config.clock
        get = runner.predictions.get

        async def advance(run: Prediction) -> Prediction:
            try:
                async with deadline(clock, self._safety_poll):
                    return await self._wait(run.id)
            except TimeoutError:
                self.stats["safety_polls"] += 1
                return await get(run.id)

        return advance

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
        on_created: OnCreated | None = None,
    ) -> Any:
        """Like :meth:`AsyncReplicate.run`, but completion comes by webhook: one create
        (no ``Prefer: wait`` hold, no polling), then the ``completed`` delivery.

        ``timeout`` is one deadline (the server is told too, via ``Cancel-After``); on
        the deadline, task cancellation or the waiter closing, the prediction is canceled
        on the server. Errors name the prediction (``.prediction``); ``on_created`` gets
        it the moment it is created.
        """
        runner = client._runner
        prediction = await self._run_prediction(
            runner, ref, input=input, deployment=deployment, timeout=timeout,
            cancel_after=cancel_after, on_created=on_created,
        )  # fmt: skip
        return runner.output(prediction, use_file_output)

    async def _run_prediction(
        self,
        runner: Runner,
        ref: str | None,
        *,
        input: Mapping[str, Any],
        deployment: str | None,
        timeout: float | None,
        cancel_after: float | timedelta | str | None,
        on_created: OnCreated | None = None,
    ) -> Prediction:
        _, cancel_after = deadline_options(timeout, None, cancel_after)
        create = runner.creator(
            ref,
            deployment=deployment,
            input=input,
            cancel_after=cancel_after,
            webhook=self.url,
            webhook_events_filter=["completed"],
        )
        return await runner.drive_prediction(
            create, advance=self._advance(runner), timeout=timeout, on_created=on_created
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
        on_created: OnCreated | None = None,
    ) -> PredictionStream[RunResult]:
        """Like :meth:`AsyncReplicate.run_many`, with completion by webhook."""
        runner = client._runner

        async def run_one(item: Mapping[str, Any]) -> Prediction:
            return await self._run_prediction(
                runner, ref, input=item, deployment=deployment, timeout=timeout,
                cancel_after=None, on_created=on_created,
            )  # fmt: skip

        return runner.run_many(
            ref,
            inputs,
            run_one,
            deployment=deployment,
            concurrency=concurrency,
            use_file_output=use_file_output,
            on_progress=on_progress,
        )
