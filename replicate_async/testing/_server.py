"""``FakeReplicate``: the embedded, stateful, fault-injectable fake of Replicate's API."""

from __future__ import annotations

import asyncio
import functools
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from aiohttp import web

from . import (
    _handlers_account,
    _handlers_deployments,
    _handlers_files,
    _handlers_models,
    _handlers_predictions,
    _handlers_trainings,
    _inspect,
)
from ._clock import Clock, system_clock
from ._context import CTX, Context
from ._controls import Controls
from ._faults import Faults
from ._gate import Gate
from ._ids import IdFactory
from ._log import RecordedRequest, RequestLog
from ._options import FakeOptions
from ._pagination import PaginationQuirk
from ._protocol import install
from ._records import TERMINAL
from ._runner import Runner
from ._state import Store, load_seed
from ._webhooks import WebhookDelivery, WebhookDispatcher

if TYPE_CHECKING:
    from .. import AsyncReplicate

__all__ = ["FakeReplicate", "RecordedRequest"]


@functools.cache
def _seed_data() -> dict[str, Any]:
    return load_seed()


class FakeReplicate(Controls):
    """A local, in-memory Replicate API on ``127.0.0.1`` (a free port by default).

    ::

        async with FakeReplicate() as fake:
            async with fake.client() as client:
                ...
            assert fake.count("POST", "/v1/predictions") == 1

    ``host``/``port`` say where to listen; ``clock`` is a callable returning unix
    seconds (pass a :class:`ManualClock` to drive run durations, ``Prefer: wait`` holds,
    deadlines and rate limits by hand). Every other keyword argument is a field of
    :class:`FakeOptions` (``token``, ``page_size``, ``rate_limits_enabled``,
    ``create_burst``, ``seed``, ``default_duration``, ``webhook_throttle``,
    ``max_file_size``, ``body_timeout``, ``inspect_endpoint``...), documented there.
    ``seed=1234`` makes every id reproducible.

    State (models, predictions, files...) lives only as long as the instance; see
    :attr:`predictions`, :attr:`files`, :meth:`hold`, :meth:`script`, :meth:`env`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        **options: Any,
    ) -> None:
        self.options = FakeOptions(**options)
        """The options this fake was built with."""
        self.host = host
        self._requested_port = port
        self.clock: Clock = clock if clock is not None else system_clock
        self.faults = Faults()
        """The fault registry: ``fake.faults.add(...)``, ``fake.faults.clear()``."""
        opts = self.options
        self._log = RequestLog(
            self.clock,
            enabled=opts.record_requests,
            max_requests=opts.max_recorded_requests,
            max_body=opts.max_recorded_body,
        )
        self._gate = Gate(opts, self.clock, self.faults, self._log)
        self._ctx = self._make_context()
        self.app = self._make_app()
        """The underlying :class:`aiohttp.web.Application`."""
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def _make_context(self) -> Context:
        opts = self.options
        ids = IdFactory(opts.id_seed)
        store = Store(lambda: int(self.clock() * 1_000_000_000), ids)
        if opts.loads_seed_data:
            store.load(_seed_data())
        webhooks = WebhookDispatcher(
            opts.webhook_secret,
            self.clock,
            max_attempts=opts.webhook_max_attempts,
            retry_delay=opts.webhook_retry_delay,
            throttle=opts.webhook_throttle,
            ids=ids,
        )
        return Context(
            options=opts,
            clock=self.clock,
            store=store,
            runner=Runner(store, self.clock, webhooks),
            webhooks=webhooks,
            faults=self.faults,
        )

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first (see :class:`RecordedRequest`), including
        the ones rejected before any handler ran."""
        return self._log.entries

    @property
    def server_errors(self) -> list[BaseException]:
        """Unexpected exceptions raised by handlers (answered with a 500); should stay empty."""
        return self._gate.server_errors

    # --------------------------------------------------------------------- lifecycle

    def _make_app(self) -> web.Application:
        # The gate enforces the body limit itself (streaming); aiohttp's own check only
        # applies to request.read() and must not be the tighter one.
        app = web.Application(
            middlewares=[self._gate.middleware],
            client_max_size=self.options.max_file_size + 2 * 1024 * 1024,
        )
        app[CTX] = self._ctx
        for module in (
            _handlers_predictions,
            _handlers_trainings,
            _handlers_models,
            _handlers_account,
            _handlers_deployments,
            _handlers_files,
        ):
            app.add_routes(module.routes())
        if self.options.inspect_endpoint:
            app.add_routes(_inspect.routes(lambda: self.requests, lambda: self.webhook_deliveries))
        return app

    async def start(self) -> None:
        """Start serving (idempotent)."""
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        install(runner, self._parse_error, self.options.head_timeout)
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._ctx.origin = f"http://{_url_host(self.host)}:{self._port}"
        self._ctx.runner.origin = self._ctx.origin
        self._ctx.runner.closing = False

    def _parse_error(self, exc: BaseException | None, status: int, detail: str) -> None:
        if status >= 500 and exc is not None:
            self._gate.server_errors.append(exc)
        record = self._log.record(None, None, rejected=detail)
        if record is not None:
            record.status = status

    async def stop(self) -> None:
        """Stop serving: cancel runs, webhook deliveries, open streams; close sockets."""
        runner, self._runner = self._runner, None
        await self._ctx.runner.shutdown()
        await self._ctx.webhooks.close()
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeReplicate:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -------------------------------------------------------------------- addresses

    @property
    def port(self) -> int:
        """The TCP port actually bound (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("the fake server is not started")
        return self._port

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if not self._ctx.origin:
            raise RuntimeError("the fake server is not started")
        return self._ctx.origin

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass it as the SDK's ``base_url``."""
        return f"{self.origin}/v1"

    def url(self, path: str) -> str:
        """An absolute URL on the fake for ``path`` (``/v1/...`` or relative to ``/v1``)."""
        if not path.startswith("/v1/") and not path.startswith("/delivery/"):
            path = "/v1/" + path.lstrip("/")
        return f"{self.origin}{path}"

    @property
    def token(self) -> str:
        """The one API token the fake accepts."""
        return self.options.token

    @property
    def auth_headers(self) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}``."""
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, **kwargs: Any) -> AsyncReplicate:
        """``replicate_async.AsyncReplicate(api_token=fake.token, base_url=fake.base_url, ...)``."""
        from .. import AsyncReplicate  # imported lazily: the SDK imports nothing from here

        return AsyncReplicate(api_token=self.token, base_url=self.base_url, **kwargs)

    # ----------------------------------------------------------------- request log

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many recorded requests match ``method`` and ``path`` (exact or glob)."""
        return len(self._log.matching(method, path))

    def requests_matching(
        self, method: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests matching ``method`` (any if ``None``) and ``path`` (exact/glob)."""
        return self._log.matching(method, path)

    def clear_requests(self) -> None:
        """Forget every recorded request."""
        self._log.entries.clear()

    # ------------------------------------------------------------------- data setup

    def add_models(self, count: int) -> None:
        """Add ``count`` public synthetic models (``synthetic/model-000000``...), cheaply."""
        self._ctx.store.add_synthetic_models(count)

    def add_predictions(self, count: int, *, source: Literal["api", "web"] = "api") -> None:
        """Add ``count`` succeeded synthetic ``fake/echo`` predictions, older than the rest."""
        self._ctx.store.add_synthetic_predictions(count, source)

    @property
    def pagination_quirk(self) -> PaginationQuirk | None:
        """Break ``next``/``previous`` links on purpose.

        ``"loop"`` repeats the current cursor, ``"foreign_host"`` points at
        ``http://evil.example``, ``"relative"`` drops scheme and host, ``"http"`` moves to
        ``http://api.replicate.com``, ``"null_string"`` sends ``"null"`` for no page.
        """
        return self._ctx.pagination_quirk

    @pagination_quirk.setter
    def pagination_quirk(self, value: PaginationQuirk | None) -> None:
        allowed = (None, "loop", "foreign_host", "relative", "http", "null_string")
        if value not in allowed:
            raise ValueError(f"unknown pagination quirk {value!r}")
        self._ctx.pagination_quirk = value

    @property
    def rate_limits_enabled(self) -> bool:
        """Whether 429s are returned when a bucket is empty (can be toggled at runtime)."""
        return self._gate.limits.enabled

    @rate_limits_enabled.setter
    def rate_limits_enabled(self, value: bool) -> None:
        self._gate.limits.enabled = value

    # ------------------------------------------------------------- state inspection

    @property
    def account(self) -> dict[str, Any]:
        """The account the token belongs to."""
        return self._ctx.store.account

    @property
    def webhook_secret(self) -> str:
        """The signing secret (``GET /v1/webhooks/default/secret``)."""
        return self.options.webhook_secret

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every webhook delivery attempt, oldest first."""
        return self._ctx.webhooks.deliveries

    def latest_version_id(self, model: str) -> str:
        """The latest version id of ``model`` (``owner/name``), e.g. for ``owner/name:id``."""
        found = self._ctx.store.get_model(model)
        latest = found.latest_version if found is not None else None
        if latest is None:
            raise KeyError(f"{model} has no versions")
        return latest.id

    def prediction(self, prediction_id: str) -> dict[str, Any] | None:
        """A prediction's (or training's) current JSON, as ``GET`` would return it."""
        store = self._ctx.store
        found = store.get_prediction(prediction_id) or store.trainings.get(prediction_id)
        return found.to_json(self.origin) if found is not None else None

    async def wait_for_prediction(
        self,
        prediction_id: str,
        statuses: frozenset[str] | set[str] = TERMINAL,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Wait (at most ``timeout`` real seconds) until a prediction reaches ``statuses``."""
        store = self._ctx.store
        found = store.get_prediction(prediction_id) or store.trainings.get(prediction_id)
        if found is None:
            raise KeyError(prediction_id)
        async with asyncio.timeout(timeout):
            while found.status not in statuses:
                await found.wait_changed().wait()
        return found.to_json(self.origin)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no prediction or training is running."""
        await self._ctx.runner.wait_idle(timeout)

    async def drain_webhooks(self, timeout: float = 5.0) -> None:
        """Wait until every queued webhook delivery has been attempted."""
        await self._ctx.webhooks.drain(timeout)

    def signed_download_params(self, file_id: str, expires_in: float = 3600.0) -> dict[str, str]:
        """Query parameters (``owner``, ``expiry``, ``signature``) for ``files.download``."""
        owner = str(self._ctx.store.account["username"])
        expiry = int(self.clock() + expires_in)
        signature = self._ctx.file_signature(owner, file_id, expiry)
        return {"owner": owner, "expiry": str(expiry), "signature": signature}

    def signed_download_url(self, file_id: str, expires_in: float = 3600.0) -> str:
        """The absolute signed ``GET /v1/files/{id}/download`` URL."""
        query = urlencode(self.signed_download_params(file_id, expires_in))
        return f"{self.base_url}/files/{file_id}/download?{query}"


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # links use loopback
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
