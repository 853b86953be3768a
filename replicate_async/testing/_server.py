"""``FakeReplicate``: the embedded, stateful, fault-injectable fake of Replicate's API."""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import json
import logging
import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

from aiohttp import web

from . import _handlers_misc, _handlers_models, _handlers_predictions
from ._clock import Clock, system_clock
from ._context import CTX, DEFAULT_TOKEN, DEFAULT_WEBHOOK_SECRET, Context, FakeOptions
from ._faults import FAULT, Fault, Faults, deliver, drop
from ._models import ModelBehaviour
from ._pagination import PaginationQuirk
from ._ratelimit import TokenBucket
from ._records import TERMINAL
from ._runner import Runner
from ._state import Store, load_seed
from ._util import ApiError, problem
from ._webhooks import WebhookDelivery, WebhookDispatcher

if TYPE_CHECKING:
    from .. import AsyncReplicate

__all__ = ["FakeReplicate", "RecordedRequest"]

logger = logging.getLogger("replicate_async.testing")

_CREATE_RE = re.compile(
    r"^/v1/(?:predictions|models/[^/]+/[^/]+/predictions|deployments/[^/]+/[^/]+/predictions)$"
)
_UNAUTH_RE = re.compile(
    r"^(?:/v1/search|/v1/streams/.*|/v1/files/fstream-.*|/v1/files/[^/]+/download|/delivery/.*)$"
)
_UNLIMITED_RE = re.compile(r"^(?:/v1/streams/.*|/v1/files/fstream-.*|/delivery/.*)$")


@functools.cache
def _seed_data() -> dict[str, Any]:
    return load_seed()


@dataclass(slots=True)
class RecordedRequest:
    """One request the fake received (recorded even when a fault answered it).

    ``headers`` has lower-cased names; ``query`` keeps the last value of repeated keys;
    ``time`` is the fake's (injectable) clock.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    time: float
    fault: bool = False
    status: int | None = None
    """The response status sent (set once the response was produced; ``None`` while in
    flight and when the connection was dropped without an answer). A stream cut by
    ``drop_after_events`` keeps its 200: the headers had been sent."""

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(slots=True)
class _Limits:
    create: TokenBucket
    other: TokenBucket
    enabled: bool = False
    extra: dict[str, str] = field(default_factory=dict)


class FakeReplicate:
    """A local, in-memory Replicate API on ``127.0.0.1`` (a free port by default).

    ::

        async with FakeReplicate() as fake:
            async with fake.client() as client:
                ...
            assert fake.count("POST", "/v1/predictions") == 1

    Options (keyword-only):

    - ``host``/``port``: where to listen (``127.0.0.1``, a free port).
    - ``token``: the one accepted API token; ``require_auth=False`` accepts anything.
    - ``page_size``: items per page on every list (100, like the real API).
    - ``rate_limits_enabled`` (off by default), ``create_limit_per_minute`` (600),
      ``other_limit_per_minute`` (3000): token buckets; 429 + ``Retry-After`` when empty.
      ``create_burst`` / ``other_burst``: how many tokens each bucket holds (``None``, the
      default: a full minute's worth); e.g. ``create_limit_per_minute=6, create_burst=1``
      like Replicate's low-credit accounts. Buckets refill on ``clock``.
    - ``clock``: a callable returning unix seconds; pass a :class:`ManualClock` to drive
      run durations, ``Prefer: wait`` holds, deadlines and rate limits by hand.
    - ``seed``: load the built-in models, collections, deployments... (default on).
    - ``default_duration`` (0 s), ``slow_duration`` (5 s, for ``fake/slow``),
      ``training_duration`` (0 s): how long runs spend ``processing``.
    - ``webhook_secret``, ``webhook_max_attempts`` (3, terminal event only),
      ``webhook_retry_delay`` (0.05 s, doubling), ``webhook_throttle`` (0.5 s between
      ``output``/``logs`` deliveries; 0 sends them all).
    - ``files_signing_secret``, ``max_file_size`` (100 MB).
    - ``prefer_wait_incomplete_status``: 201 (what the real API sends) or 202.
    - ``record_requests`` / ``max_recorded_requests``: the request log.

    State (models, predictions, files...) lives only as long as the instance.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        require_auth: bool = True,
        page_size: int = 100,
        rate_limits_enabled: bool = False,
        create_limit_per_minute: int = 600,
        other_limit_per_minute: int = 3000,
        create_burst: int | None = None,
        other_burst: int | None = None,
        clock: Clock | None = None,
        seed: bool = True,
        default_duration: float = 0.0,
        slow_duration: float = 5.0,
        training_duration: float = 0.0,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        webhook_max_attempts: int = 3,
        webhook_retry_delay: float = 0.05,
        webhook_throttle: float = 0.5,
        files_signing_secret: str = "fake-files-signing-secret",
        max_file_size: int = 100 * 1024 * 1024,
        prefer_wait_incomplete_status: Literal[201, 202] = 201,
        record_requests: bool = True,
        max_recorded_requests: int | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.options = FakeOptions(
            token=token,
            require_auth=require_auth,
            page_size=page_size,
            rate_limits_enabled=rate_limits_enabled,
            create_limit_per_minute=create_limit_per_minute,
            other_limit_per_minute=other_limit_per_minute,
            create_burst=create_burst,
            other_burst=other_burst,
            seed=seed,
            default_duration=default_duration,
            slow_duration=slow_duration,
            training_duration=training_duration,
            webhook_secret=webhook_secret,
            webhook_max_attempts=webhook_max_attempts,
            webhook_retry_delay=webhook_retry_delay,
            webhook_throttle=webhook_throttle,
            files_signing_secret=files_signing_secret,
            max_file_size=max_file_size,
            prefer_wait_incomplete_status=prefer_wait_incomplete_status,
            record_requests=record_requests,
            max_recorded_requests=max_recorded_requests,
        )
        self.host = host
        self._requested_port = port
        self.clock: Clock = clock if clock is not None else system_clock
        self.requests: list[RecordedRequest] = []
        """Every request received, oldest first (see :class:`RecordedRequest`)."""
        self.server_errors: list[BaseException] = []
        """Unexpected exceptions raised by handlers (answered with a 500); should stay empty."""
        self.faults = Faults()
        """The fault registry: ``fake.faults.add(...)``, ``fake.faults.clear()``."""
        store = Store(lambda: int(self.clock() * 1_000_000_000))
        if seed:
            store.load(_seed_data())
        webhooks = WebhookDispatcher(
            webhook_secret,
            self.clock,
            max_attempts=webhook_max_attempts,
            retry_delay=webhook_retry_delay,
            throttle=webhook_throttle,
        )
        self._ctx = Context(
            options=self.options,
            clock=self.clock,
            store=store,
            runner=Runner(store, self.clock, webhooks),
            webhooks=webhooks,
            faults=self.faults,
        )
        self._limits = _Limits(
            TokenBucket(create_limit_per_minute, self.clock, create_burst),
            TokenBucket(other_limit_per_minute, self.clock, other_burst),
            enabled=rate_limits_enabled,
        )
        self.app = self._make_app()
        """The underlying :class:`aiohttp.web.Application`."""
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # --------------------------------------------------------------------- lifecycle

    def _make_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._middleware],
            client_max_size=self.options.max_file_size + 1024 * 1024,
        )
        app[CTX] = self._ctx
        app.add_routes(_handlers_predictions.routes())
        app.add_routes(_handlers_models.routes())
        app.add_routes(_handlers_misc.routes())
        return app

    async def start(self) -> None:
        """Start serving (idempotent)."""
        if self._runner is not None:
            return
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._port = int(address[1])
        self._ctx.origin = f"http://{_url_host(self.host)}:{self._port}"
        self._ctx.runner.origin = self._ctx.origin
        self._ctx.runner.closing = False

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
        return len(self.requests_matching(method, path))

    def requests_matching(
        self, method: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests matching ``method`` (any if ``None``) and ``path`` (exact/glob)."""
        out = []
        for req in self.requests:
            if method is not None and req.method != method.upper():
                continue
            if path is not None and not _path_matches(path, req.path):
                continue
            out.append(req)
        return out

    def clear_requests(self) -> None:
        """Forget every recorded request."""
        self.requests.clear()

    # ------------------------------------------------------------------- data setup

    def add_models(self, count: int) -> None:
        """Add ``count`` public synthetic models (``synthetic/model-000000``...), cheaply."""
        self._ctx.store.add_synthetic_models(count)

    def add_predictions(self, count: int, *, source: Literal["api", "web"] = "api") -> None:
        """Add ``count`` succeeded synthetic ``fake/echo`` predictions, older than the rest."""
        self._ctx.store.add_synthetic_predictions(count, source)

    def set_model_behaviour(
        self,
        model: str,
        *,
        duration: float | None = None,
        queue_time: float = 0.0,
        outcome: Literal["succeed", "fail"] = "succeed",
        error: str = "Prediction failed for an unknown reason",
    ) -> None:
        """Configure how runs of ``model`` (``owner/name``) behave from now on.

        ``duration`` is the processing time in seconds (``None``: the server default),
        ``queue_time`` the time spent ``starting``; ``outcome="fail"`` ends runs ``failed``.
        """
        self._ctx.behaviours[model] = ModelBehaviour(duration, queue_time, outcome, error)

    def reset_model_behaviour(self, model: str | None = None) -> None:
        """Forget the behaviour set for ``model`` (or for all models)."""
        if model is None:
            self._ctx.behaviours.clear()
        else:
            self._ctx.behaviours.pop(model, None)

    def set_training_behaviour(
        self,
        *,
        duration: float | None = None,
        queue_time: float = 0.0,
        outcome: Literal["succeed", "fail"] = "succeed",
        error: str = "Training failed",
    ) -> None:
        """Configure how trainings run from now on (like :meth:`set_model_behaviour`)."""
        self._ctx.training_behaviour = ModelBehaviour(duration, queue_time, outcome, error)

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
        return self._limits.enabled

    @rate_limits_enabled.setter
    def rate_limits_enabled(self, value: bool) -> None:
        self._limits.enabled = value

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

    # ------------------------------------------------------------------ middleware

    def _record(self, request: web.Request, body: bytes, faulted: bool) -> RecordedRequest | None:
        if not self.options.record_requests:
            return None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            time=self.clock(),
            fault=faulted,
        )
        self.requests.append(record)
        limit = self.options.max_recorded_requests
        if limit is not None and len(self.requests) > limit * 2:
            del self.requests[:-limit]
        return record

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        fault = self.faults.take(request.method, request.path) if len(self.faults) else None
        if fault is not None and fault.drop_connection == "before_body":
            self._record(request, b"", True)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            return drop(request)
        record: RecordedRequest | None = None
        resp: web.StreamResponse
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                record = self._record(request, b"", fault is not None)
                resp = _handlers_misc.file_too_large(self.options.max_file_size)
            else:
                record = self._record(request, body, fault is not None)
                resp = await self._respond(request, handler, fault)
        except ConnectionError:
            # The client went away mid-response: nothing more to send, nothing to log.
            return drop(request)
        if record is not None and (fault is None or fault.drop_connection is None):
            record.status = resp.status
        return resp

    async def _respond(
        self, request: web.Request, handler: Any, fault: Fault | None
    ) -> web.StreamResponse:
        if fault is None:
            return await self._dispatch(request, handler)
        request[FAULT] = fault
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.replaces_response:
            return await deliver(fault, request, fault.make_response(self.clock))
        return await deliver(fault, request, await self._dispatch(request, handler))

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
        return scheme.lower() in ("bearer", "token") and credentials.strip() == self.token

    async def _dispatch(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if (
            self.options.require_auth
            and not _UNAUTH_RE.match(path)
            and not self._authorized(request)
        ):
            return problem(
                401, "You did not pass a valid authentication token", title="Unauthenticated"
            )
        headers: dict[str, str] = {}
        if path.startswith("/v1/") and not _UNLIMITED_RE.match(path):
            is_create = request.method == "POST" and _CREATE_RE.match(path) is not None
            bucket = self._limits.create if is_create else self._limits.other
            allowed, remaining, retry_after = bucket.take()
            if not allowed and self._limits.enabled:
                unit = "second" if retry_after == 1 else "seconds"
                return problem(
                    429,
                    f"Request was throttled. Expected available in {retry_after} {unit}.",
                    retry_after=retry_after,
                    headers={
                        "Retry-After": str(retry_after),
                        "ratelimit-remaining": "0",
                        "ratelimit-reset": str(retry_after),
                    },
                )
            headers = {"ratelimit-remaining": str(remaining), "ratelimit-reset": "1"}
        try:
            resp: web.StreamResponse = await handler(request)
        except ApiError as exc:
            resp = exc.response
        except web.HTTPException as exc:
            resp = problem(exc.status, exc.reason)
            if "Allow" in exc.headers:
                resp.headers["Allow"] = exc.headers["Allow"]
        except (asyncio.CancelledError, ConnectionError):
            raise
        except Exception as exc:
            logger.exception("fake Replicate handler failed for %s %s", request.method, path)
            self.server_errors.append(exc)
            resp = problem(500, "Internal server error")
        if not resp.prepared:
            resp.headers.update(headers)
        return resp


def _path_matches(pattern: str, path: str) -> bool:
    candidates = (path, path.removeprefix("/v1")) if path.startswith("/v1/") else (path,)
    if any(ch in pattern for ch in "*?["):
        return any(fnmatch.fnmatchcase(c, pattern) for c in candidates)
    return pattern in candidates


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):  # links use loopback
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
