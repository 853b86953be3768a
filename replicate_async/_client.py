"""The client: configuration, session lifecycle, and the resource namespaces."""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, Unpack, overload

import aiohttp

from ._checks import config as check_config
from ._checks import numbers as check_numbers
from ._clock import SYSTEM_CLOCK, Clock
from ._config import DEFAULT_BASE_URL, ClientConfig, PollPolicy, RetryPolicy, Timeouts
from ._core.endpoint import call_endpoint
from ._core.hooks import Hooks
from ._core.http import HTTPCore
from ._core.logs import log_from_environment
from ._core.options import RequestOptions, RequestOptionsDict
from ._core.raw import RawResponses
from ._core.sse import ServerSentEvent
from ._core.streaming import StreamingResponses
from ._core.throttle import RateLimiter
from ._core.tracing import make_tracing
from ._literals import WebhookEvent
from ._workflows.drive import OnCreated
from ._workflows.file_inputs import prepare_input
from ._workflows.file_outputs import FileOutput
from ._workflows.inflight import InFlight
from ._workflows.namespaces import PredictionsAPI, TrainingsAPI
from ._workflows.run_many import Progress, RunResult
from ._workflows.runner import RUN_HOLD, Runner
from ._workflows.stream import PredictionStream
from ._workflows.use import ModelFunction, RunOptions
from .exceptions import InvalidArgumentError
from .models import Prediction
from .resources import (
    AccountResource,
    Collections,
    DefaultWebhooks,
    Deployments,
    Files,
    HardwareResource,
    Models,
    Predictions,
    Search,
    Trainings,
    Webhooks,
)
from .resources.account import WebhookSecretResource

if TYPE_CHECKING:
    from .batch import Batch, BatchStore, Inputs, KeyFunc

__all__ = ["AsyncReplicate"]

T = TypeVar("T")
#: Query parameters of :meth:`AsyncReplicate.get` and the like.
Query = Mapping[str, str] | None


class FleetLike(Protocol):
    """What ``AsyncReplicate(fleet=...)`` needs (:class:`replicate_async.redis.Fleet`)."""

    @property
    def limiter(self) -> RateLimiter:
        """The fleet-wide rate limiter this client paces with."""
        ...

    @property
    def registry(self) -> object:
        """The in-flight registry, added to the client's run observers."""
        ...

    def attach(self, client: AsyncReplicate) -> None:
        """Let the fleet use this client (to cancel dead workers' runs)."""
        ...


class AsyncReplicate:
    """An asyncio client for Replicate's HTTP API.

    Use it as an async context manager (one connection pool for its lifetime)::

        async with AsyncReplicate() as client:
            model = await client.models.get("stability-ai/sdxl")

    or keep one per application and ``await client.aclose()`` at shutdown. The token
    comes from ``api_token`` or ``REPLICATE_API_TOKEN``; a missing token is reported at
    the first request that needs one. The base URL comes from ``base_url``,
    ``REPLICATE_BASE_URL``, or the public API.

    ``timeout`` is a :class:`Timeouts` or a number (every timeout of an attempt: connect,
    read and total, as in httpx; see :meth:`Timeouts.every`); ``max_retries``
    overrides the retry policy's count (``0`` disables retries). ``max_connections`` is
    three budgets of that many connections each: one for quick calls, one for requests that
    stay open (creates held by ``Prefer: wait``, SSE streams), one for file downloads, so
    long holds never starve a quick ``GET`` and a stream's consumer can download files
    inside its loop; extra requests queue for a free slot of their budget (at most
    ``3 * max_connections`` sockets in all), and raise :class:`PoolTimeoutError` when no
    slot of it is freed for ``Timeouts.pool`` seconds (300 by default). A ``session`` you
    pass is borrowed: the client never closes it.

    ``limiter`` paces requests under Replicate's rate limits (default: an in-process
    :class:`~replicate_async._core.throttle.Throttle`; pass a shared one, e.g. Redis-backed, to
    pace a fleet). ``fleet`` (a :class:`replicate_async.redis.Fleet`) does the wiring for
    many workers: its limiter paces this client, and its in-flight registry records every
    run this client starts, so peers cancel them if this worker dies. ``clock`` is the
    time source for every wait (tests pass a virtual one,
    e.g. :class:`replicate_async.testing.ManualClock`).

    ``default_headers``/``default_query`` go on every request (checked like a call's
    ``extra_headers``/``extra_query``, which win over them; ``Authorization`` is only ever
    the token). Proxies come from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``NO_PROXY``; ``https`` through a ``CONNECT`` tunnel, so the proxy never sees the token)
    unless ``trust_env=False``; a borrowed ``session`` keeps its own setting.
    ``REPLICATE_ASYNC_LOG=debug|info`` logs requests to stderr (the token never appears).

    ``tracing=True`` makes OpenTelemetry spans (``pip install "replicate-async[otel]"``):
    one per call and one per HTTP attempt, ``traceparent`` sent along; pass a
    ``TracerProvider`` instead of ``True`` to use it rather than the global one.
    """

    def __init__(
        self,
        api_token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: Timeouts | float | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        max_connections: int = 100,
        session: aiohttp.ClientSession | None = None,
        user_agent: str | None = None,
        clock: Clock | None = None,
        limiter: RateLimiter | None = None,
        hooks: Hooks | None = None,
        fleet: FleetLike | None = None,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, str] | None = None,
        trust_env: bool = True,
        tracing: bool | Any = False,
    ) -> None:
        if not isinstance(trust_env, bool):
            raise TypeError(f"trust_env must be a bool, got {type(trust_env).__name__}")
        token = api_token if api_token is not None else os.environ.get("REPLICATE_API_TOKEN")
        if token is not None:
            check_config.header_text(token, "api_token")  # never echoes the token
        url = base_url or os.environ.get("REPLICATE_BASE_URL") or DEFAULT_BASE_URL
        self._config = ClientConfig(
            base_url=check_config.base_url(url),
            timeouts=check_config.client_timeouts(timeout),
            retry=check_config.retry_policy(retry, max_retries),
            poll=check_config.poll_policy(poll) or PollPolicy(),
            max_connections=check_numbers.positive_int(max_connections, "max_connections"),
            user_agent=check_config.header_text(user_agent or "", "user_agent"),
            clock=SYSTEM_CLOCK if clock is None else clock,
            trust_env=trust_env,
        )
        check_config.session(session)
        if fleet is not None and limiter is not None:
            raise InvalidArgumentError("pass either limiter or fleet (which has its own)")
        shared = fleet.limiter if fleet is not None else limiter
        # Checked exactly as a call's extra_headers/extra_query, before anything is sent.
        defaults = RequestOptions(extra_headers=default_headers, extra_query=default_query)
        log_from_environment()
        traced = make_tracing(tracing)
        http = HTTPCore(self._config, token or None, session, shared, hooks, traced)
        self._http = http.with_options(defaults)
        self._inflight = InFlight(self._config.clock)
        #: The :class:`replicate_async.redis.Fleet` this client is part of, if any.
        self.fleet = fleet
        if fleet is not None:
            fleet.attach(self)
            # The run observers of the in-flight set (every run-starting workflow reports
            # to them); absent on versions without them, where only track() records runs.
            observers = getattr(self._inflight, "observers", None)
            if isinstance(observers, list):
                observers.append(fleet.registry)
        self._namespaces(self._http)

    def with_options(
        self,
        *,
        timeout: float | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        default_query: Mapping[str, str] | None = None,
    ) -> AsyncReplicate:
        """A copy of this client whose every request uses these :class:`RequestOptions`
        (on top of this client's own), sharing its connection pool, rate limiter, hooks and
        counters (closing either closes the shared pool)::

            patient = client.with_options(timeout=120, max_retries=8)

        ``default_headers``/``default_query`` are the same as ``extra_headers``/
        ``extra_query`` here (the names the constructor takes), merged with them.
        """
        headers = _merged(default_headers, extra_headers)
        query = _merged(default_query, extra_query)
        options = RequestOptions(timeout, headers, query, extra_body, max_retries)
        clone = object.__new__(AsyncReplicate)
        clone.__dict__.update(self.__dict__)
        clone._http = self._http.with_options(options)
        clone._namespaces(clone._http)
        return clone

    @property
    def with_raw_response(self) -> RawResponses:
        """The same namespaces, each operation returning a :class:`RawResponse` (status,
        headers, ``request_id``, ``elapsed``, ``retries``, and ``.parse()`` for the typed
        result)::

            raw = await client.with_raw_response.predictions.get("abc")
            print(raw.status, raw.request_id)
            prediction = raw.parse()
        """
        return RawResponses(self)

    @property
    def with_streaming_response(self) -> StreamingResponses:
        """The same namespaces, each operation returning an async context manager over a
        :class:`~replicate_async._core.streaming.StreamedResponse`: status and headers as soon as
        they arrive, the body read only when asked (``read``, ``iter_bytes``, ``text``,
        ``json``, ``parse``); the connection is released when the block exits::

            async with client.with_streaming_response.predictions.get("abc") as response:
                print(response.status, response.request_id)
                prediction = await response.parse()

        An error status raises the usual typed error on entering. Not retried.
        """
        return StreamingResponses(self)

    def _namespaces(self, http: HTTPCore) -> None:
        """Build the resource namespaces on ``http``."""
        prepare = functools.partial(prepare_input, http)
        self.account = AccountResource(http)
        self.collections = Collections(http)
        self.deployments = Deployments(http, prepare)
        self.files = Files(http)
        self.hardware = HardwareResource(http)
        self.models = Models(http, prepare)
        predictions, trainings = Predictions(http, prepare), Trainings(http, prepare)
        #: The workflows (run, wait, stream, fan-out) on this client's operations.
        self._runner = runner = Runner(
            http, self._config, self._inflight, predictions, self.models, self.deployments,
            trainings,
        )  # fmt: skip
        self.predictions = PredictionsAPI(predictions, runner)
        self.trainings = TrainingsAPI(trainings, runner)
        self.webhooks = Webhooks(DefaultWebhooks(WebhookSecretResource(http)))
        self.search = Search(http)

    @property
    def config(self) -> ClientConfig:
        """The frozen configuration this client runs with."""
        return self._config

    @property
    def base_url(self) -> str:
        """The API base URL, without a trailing slash."""
        return self._config.base_url

    @property
    def stats(self) -> dict[str, int]:
        """Counters: HTTP requests sent, retries made, waits caused by throttling."""
        return self._http.stats

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._http.closed

    async def __aenter__(self) -> AsyncReplicate:
        await self._http.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def inflight(self) -> InFlight:
        """The runs, streams and server-side cancels in flight (closed by :meth:`aclose`)."""
        return self._inflight

    async def aclose(self) -> None:
        """Cancel what is in flight, then close the connection pool. Idempotent.

        Every run, wait and stream still in flight is canceled on the server (its caller
        gets :class:`ClientClosedError`), and up to 10 s are given for those cancels (and
        any left by abandoned runs) to land before the pool (unless borrowed) is closed.
        """
        if not self._http.closed:
            self._http.stop_creating()
            await self._inflight.aclose()
        await self._http.aclose()

    # -- workflows ----------------------------------------------------------------------

    async def run(
        self,
        ref: str | None = None,
        *,
        input: Mapping[str, Any],
        deployment: str | None = None,
        timeout: float | None = None,
        wait: bool | int | None = RUN_HOLD,
        cancel_after: float | timedelta | str | None = None,
        use_file_output: bool = False,
        webhook: str | None = None,
        webhook_events_filter: Iterable[WebhookEvent] | None = None,
        on_created: OnCreated | None = None,
    ) -> Any:
        """Run a model and return its output (:meth:`predictions.run
        <replicate_async._workflows.namespaces.PredictionsAPI.run>` returns the whole prediction).

        ``ref`` is ``"owner/name"`` (official model), ``"owner/name:version_id"`` or a
        version id; or pass ``deployment="owner/name"``. Files (paths, bytes, file objects)
        in ``input`` are inlined or uploaded. The create asks the server to hold it for
        ``wait`` seconds (``Prefer: wait``; 5 by default, ``True`` for the 60 s maximum),
        then the prediction is polled with backoff until it is terminal. A short hold means
        the prediction's id is known early, so an abandoned run is canceled within seconds.

        ``timeout`` is ONE deadline for create, wait and polling: when it passes, the
        prediction is canceled on the server and :class:`PredictionTimeoutError` raised (by
        default the server is also told via ``Cancel-After``). If the awaiting task is
        cancelled, or the client closed, the prediction is canceled on the server too.

        Raises :class:`ModelError` (failed), :class:`PredictionCanceledError`,
        :class:`PredictionAbortedError`. Any error raised once the create answered names
        the prediction (``.prediction``, ``.prediction_id``), which was canceled on the
        server if still running. ``on_created`` (a function or coroutine function) gets
        the :class:`Prediction` the moment its create returns. ``use_file_output=True``
        returns URL outputs as :class:`FileOutput` objects; by default outputs are
        returned exactly as the API gave them.
        """
        prediction = await self._runner.run(
            ref,
            input=input,
            deployment=deployment,
            timeout=timeout,
            wait=wait,
            cancel_after=cancel_after,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
            on_created=on_created,
        )
        return self._runner.output(prediction, use_file_output)

    def run_many(
        self,
        ref: str | None,
        inputs: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = 32,
        deployment: str | None = None,
        timeout: float | None = None,
        wait: bool | int | None = RUN_HOLD,
        use_file_output: bool = False,
        on_progress: Callable[[Progress], Any] | None = None,
        on_created: OnCreated | None = None,
    ) -> PredictionStream[RunResult]:
        """Run a model over many inputs, ``concurrency`` at a time, yielding
        :class:`RunResult` objects as they complete (not in input order: see ``.index``).

        A failure is reported in its result and never stops the others. ``timeout`` applies
        to each run. ``on_progress`` is called with a :class:`Progress` after each result,
        ``on_created`` with each :class:`Prediction` as soon as it is created.
        At most ``concurrency`` runs are started beyond the results taken; leaving the loop
        (or the ``async with`` block the result also supports) cancels the runs still in
        flight, on the server too.
        """
        check_numbers.seconds(timeout, "timeout")  # validate everything once, before anything runs
        check_numbers.prefer_wait(wait)
        runner = self._runner

        def run_one(item: Mapping[str, Any]) -> Awaitable[Prediction]:
            # The run's own coroutine (its arguments checked above): no layer more per run.
            return runner.run(
                ref,
                input=item,
                deployment=deployment,
                timeout=timeout,
                wait=wait,
                cancel_after=None,
                on_created=on_created,
            )

        return runner.run_many(
            ref,
            inputs,
            run_one,
            deployment=deployment,
            concurrency=concurrency,
            use_file_output=use_file_output,
            on_progress=on_progress,
        )

    def batch(
        self,
        ref: str | None,
        inputs: Inputs | None = None,
        *,
        store: BatchStore | str | os.PathLike[str],
        key: str | KeyFunc = "id",
        concurrency: int = 32,
        **options: Any,
    ) -> Batch:
        """A durable batch of ``ref`` over ``inputs`` (iterable, async iterable or JSONL
        path; streamed) in ``store`` (SQLite path, ``redis://`` URL or a ``BatchStore``),
        keyed by ``key`` (a field name or function): ``async for item in client.batch(...)``
        runs or resumes it. ``options``: see :class:`~replicate_async.batch.Batch`."""
        from .batch import Batch

        return Batch(
            self._runner, ref, inputs, store=store, key=key, concurrency=concurrency, **options
        )

    def stream(
        self,
        ref: str | None = None,
        *,
        input: Mapping[str, Any],
        deployment: str | None = None,
        idle_timeout: float = 60.0,
        max_reconnects: int = 5,
        raise_on_error: bool = True,
        timeout: float | None = None,
        on_created: OnCreated | None = None,
    ) -> PredictionStream[ServerSentEvent]:
        """Create a prediction and yield its server-sent events until ``done``.

        Events are ``output`` (text; or a file URL when the stream URL is under
        ``/v1/files/``: see :meth:`stream_output`), ``logs``, ``error`` (raised as
        :class:`StreamError` unless ``raise_on_error=False``) and ``done``; unknown types
        pass through. Dropped connections resume with ``Last-Event-ID``, losing and
        repeating nothing. Use it as an iterator, or as ``async with client.stream(...)
        as events:``; leaving before ``done`` (``break``, an exception, a cancelled task,
        the ``async with`` block, the client closing) cancels the prediction on the
        server. ``timeout`` is ONE deadline for create, stream and cancel, as in
        :meth:`run` (:class:`PredictionTimeoutError`); ``idle_timeout`` bounds the silence
        between events. ``on_created`` gets the :class:`Prediction` once created. Arguments
        are checked here, before anything is sent.
        """
        return self._runner.stream(
            ref,
            input=input,
            deployment=deployment,
            idle_timeout=idle_timeout,
            max_reconnects=max_reconnects,
            raise_on_error=raise_on_error,
            timeout=timeout,
            on_created=on_created,
        )

    def stream_output(
        self,
        ref: str | None = None,
        *,
        input: Mapping[str, Any],
        deployment: str | None = None,
        idle_timeout: float = 60.0,
        max_reconnects: int = 5,
        timeout: float | None = None,
        on_created: OnCreated | None = None,
    ) -> PredictionStream[str | FileOutput]:
        """Like :meth:`stream`, but yield only the outputs: text fragments, or
        :class:`FileOutput` objects when the model streams files (its stream URL is under
        ``/v1/files/``). An ``error`` event raises :class:`StreamError`. ``timeout`` and
        ``on_created`` as in :meth:`stream`."""
        return self._runner.stream(
            ref,
            input=input,
            deployment=deployment,
            idle_timeout=idle_timeout,
            max_reconnects=max_reconnects,
            outputs_only=True,
            timeout=timeout,
            on_created=on_created,
        )

    def use(
        self,
        ref: str | None = None,
        *,
        deployment: str | None = None,
        check_input: bool = True,
        **options: Any,
    ) -> ModelFunction:
        """A model as an async function: ``await fn(**input)`` runs it and returns its
        output, ``fn.create``/``fn.stream``/``fn.schema`` create, stream, describe it.

        ``ref`` is ``"owner/name"`` or ``"owner/name:version"`` (or ``deployment=``);
        ``options`` are :meth:`run`'s (``timeout``, ``wait``, ``use_file_output``...). The
        version's schema is fetched once, at the first call; inputs are checked against it
        before anything is sent (:class:`InputValidationError`) unless ``check_input=False``.
        """
        opts = RunOptions(options, check_input)
        return ModelFunction(self._runner, self._config.clock, ref, deployment, opts)

    # -- any endpoint ----------------------------------------------------------------
    # Typed by overloads: without cast_to the decoded JSON (Any); with cast_to (a model
    # class, str, bytes or a function of the JSON) what cast_to returns.

    @overload
    async def get(
        self, path: str, *, query: Query = None, **options: Unpack[RequestOptionsDict]
    ) -> Any: ...
    @overload
    async def get(
        self,
        path: str,
        *,
        cast_to: Callable[..., T],
        query: Query = None,
        **options: Unpack[RequestOptionsDict],
    ) -> T: ...
    async def get(
        self,
        path: str,
        *,
        cast_to: Any = object,
        query: Query = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Any:
        """``GET`` an endpoint the SDK does not wrap: ``path`` is relative to the API base
        URL (``"models/owner/name/versions"``), its segments checked; ``cast_to`` is a model
        class, a function of the decoded JSON, ``object`` (the JSON as is; the default),
        ``str`` or ``bytes``. Retried like every ``GET``; errors are the usual typed ones::

            versions = await client.get("models/replicate/hello-world/versions")
            account = await client.get("account", cast_to=Account)
        """
        return await call_endpoint(self._http, "GET", path, cast_to, None, query, options)

    @overload
    async def post(
        self,
        path: str,
        *,
        body: Any = None,
        query: Query = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Any: ...
    @overload
    async def post(
        self,
        path: str,
        *,
        cast_to: Callable[..., T],
        body: Any = None,
        query: Query = None,
        **options: Unpack[RequestOptionsDict],
    ) -> T: ...
    async def post(
        self,
        path: str,
        *,
        cast_to: Any = object,
        body: Any = None,
        query: Query = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Any:
        """``POST`` ``body`` (a mapping or list sent as JSON, or ``bytes``) to an endpoint
        (see :meth:`get`). Never resent once it may have reached the server."""
        return await call_endpoint(self._http, "POST", path, cast_to, body, query, options)

    @overload
    async def patch(
        self,
        path: str,
        *,
        body: Any = None,
        query: Query = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Any: ...
    @overload
    async def patch(
        self,
        path: str,
        *,
        cast_to: Callable[..., T],
        body: Any = None,
        query: Query = None,
        **options: Unpack[RequestOptionsDict],
    ) -> T: ...
    async def patch(
        self,
        path: str,
        *,
        cast_to: Any = object,
        body: Any = None,
        query: Query = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Any:
        """``PATCH`` ``body`` to an endpoint (see :meth:`post`)."""
        return await call_endpoint(self._http, "PATCH", path, cast_to, body, query, options)

    @overload
    async def delete(
        self, path: str, *, query: Query = None, **options: Unpack[RequestOptionsDict]
    ) -> Any: ...
    @overload
    async def delete(
        self,
        path: str,
        *,
        cast_to: Callable[..., T],
        query: Query = None,
        **options: Unpack[RequestOptionsDict],
    ) -> T: ...
    async def delete(
        self,
        path: str,
        *,
        cast_to: Any = object,
        query: Query = None,
        **options: Unpack[RequestOptionsDict],
    ) -> Any:
        """``DELETE`` an endpoint (see :meth:`get`); an empty answer gives ``None``."""
        return await call_endpoint(self._http, "DELETE", path, cast_to, None, query, options)

    def file_output(self, url: str) -> FileOutput:
        """A :class:`FileOutput` for an output URL (e.g. from a file stream's events)."""
        if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:")):
            raise InvalidArgumentError(f"not a file URL: {url!r:.80}")
        return self._runner.file_output(url)

    def __repr__(self) -> str:
        token = "set" if self._http._token else "missing"
        return f"AsyncReplicate(base_url={self.base_url!r}, token={token})"

    def __reduce__(self) -> Any:
        raise TypeError("AsyncReplicate cannot be pickled (it holds a secret and a session)")


def _merged(
    first: Mapping[str, str] | None, second: Mapping[str, str] | None
) -> Mapping[str, str] | None:
    """Two optional mappings as one (``second`` wins); ``None`` when both are."""
    if first is None or second is None:
        return first if second is None else second
    return {**first, **second}
