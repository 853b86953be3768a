"""The client: configuration, session lifecycle, and the resource namespaces."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from . import _validate as check
from ._config import DEFAULT_BASE_URL, ClientConfig, PollPolicy, RetryPolicy, Timeouts
from ._files import FileOutput
from ._http import HTTPCore
from ._run import (
    CANCEL_GRACE,
    Progress,
    RunResult,
    cancel_quietly,
    creator,
    deadline_options,
    drive,
    output_of,
    run_many,
    settle,
    settle_background,
)
from ._sse import ServerSentEvent
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
from .resources._base import WAIT_MARGIN
from .resources.account import WebhookSecretResource

__all__ = ["AsyncReplicate"]


class AsyncReplicate:
    """An asyncio client for Replicate's HTTP API.

    Use it as an async context manager (one connection pool for its lifetime)::

        async with AsyncReplicate() as client:
            model = await client.models.get("stability-ai/sdxl")

    or keep one per application and ``await client.aclose()`` at shutdown. The token
    comes from ``api_token`` or ``REPLICATE_API_TOKEN``; a missing token is reported at
    the first request that needs one. The base URL comes from ``base_url``,
    ``REPLICATE_BASE_URL``, or the public API.

    ``timeout`` is a :class:`Timeouts` or a number (the read timeout); ``max_retries``
    overrides the retry policy's count (``0`` disables retries); ``max_connections``
    bounds the connection pool (extra requests queue for a free connection). A
    ``session`` you pass is borrowed: the client never closes it.
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
    ) -> None:
        token = api_token if api_token is not None else os.environ.get("REPLICATE_API_TOKEN")
        if token is not None and not isinstance(token, str):
            raise TypeError("api_token must be a string")
        url = base_url or os.environ.get("REPLICATE_BASE_URL") or DEFAULT_BASE_URL
        self._config = ClientConfig(
            base_url=check.base_url(url),
            timeouts=check.client_timeouts(timeout),
            retry=check.retry_policy(retry, max_retries),
            poll=check.poll_policy(poll) or PollPolicy(),
            max_connections=check.positive_int(max_connections, "max_connections"),
            user_agent=check.header_text(user_agent or "", "user_agent"),
        )
        check.session(session)
        self._http = HTTPCore(self._config, token or None, session)
        http = self._http
        self.account = AccountResource(http)
        self.collections = Collections(http)
        self.deployments = Deployments(http)
        self.files = Files(http)
        self.hardware = HardwareResource(http)
        self.models = Models(http)
        self.predictions = Predictions(http)
        self.trainings = Trainings(http)
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

    async def aclose(self) -> None:
        """Close the connection pool (unless the session was borrowed). Idempotent.

        Server-side cancels of abandoned runs still in flight are given up to 10 s first.
        """
        if not self._http.closed:
            await settle_background()
        await self._http.aclose()

    # -- workflows ----------------------------------------------------------------------

    async def run(
        self,
        ref: str | None = None,
        *,
        input: Mapping[str, Any],
        deployment: str | None = None,
        timeout: float | None = None,
        wait: bool | int | None = True,
        cancel_after: float | timedelta | str | None = None,
        use_file_output: bool = False,
        webhook: str | None = None,
        webhook_events_filter: Iterable[str] | None = None,
    ) -> Any:
        """Run a model and return its output.

        ``ref`` is ``"owner/name"`` (official model), ``"owner/name:version_id"`` or a
        version id; or pass ``deployment="owner/name"``. Files (paths, bytes, file objects)
        in ``input`` are inlined or uploaded. The request asks the server to hold it
        (``Prefer: wait``), then polls with backoff until the prediction is terminal.

        ``timeout`` is ONE deadline for create, wait and polling: when it passes, the
        prediction is canceled on the server and :class:`PredictionTimeoutError` raised (by
        default the server is also told via ``Cancel-After``). If the awaiting task is
        cancelled, the prediction is canceled on the server too.

        Raises :class:`ModelError` (failed), :class:`PredictionCanceledError`,
        :class:`PredictionAbortedError`. ``use_file_output=True`` returns URL outputs as
        :class:`FileOutput` objects; by default outputs are returned exactly as the API
        gave them.
        """
        prediction = await self._run_prediction(
            ref,
            input=input,
            deployment=deployment,
            timeout=timeout,
            wait=wait,
            cancel_after=cancel_after,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
        )
        return output_of(self._http, prediction, use_file_output)

    async def _run_prediction(
        self,
        ref: str | None,
        *,
        input: Mapping[str, Any],
        deployment: str | None,
        timeout: float | None,
        wait: bool | int | None,
        cancel_after: float | timedelta | str | None,
        webhook: str | None = None,
        webhook_events_filter: Iterable[str] | None = None,
    ) -> Prediction:
        timeout = check.seconds(timeout, "timeout")
        wait, cancel_after = deadline_options(timeout, wait, cancel_after)
        create = creator(
            self,
            ref,
            deployment=deployment,
            input=input,
            wait=wait,
            cancel_after=cancel_after,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
        )
        _header, hold = check.prefer_wait(wait)
        return await drive(
            create=create,
            fetch=self.predictions.get,
            cancel=self.predictions.cancel,
            timeout=timeout,
            poll=self._config.poll,
            # Cancelled mid-hold, wait for the held create's answer so it can be canceled.
            create_grace=max(CANCEL_GRACE, (hold or 0.0) + WAIT_MARGIN),
        )

    def run_many(
        self,
        ref: str | None,
        inputs: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = 32,
        deployment: str | None = None,
        timeout: float | None = None,
        wait: bool | int | None = True,
        use_file_output: bool = False,
        on_progress: Callable[[Progress], Any] | None = None,
    ) -> AsyncIterator[RunResult]:
        """Run a model over many inputs, ``concurrency`` at a time, yielding
        :class:`RunResult` objects as they complete (not in input order: see ``.index``).

        A failure is reported in its result and never stops the others. ``timeout`` applies
        to each run. ``on_progress`` is called with a :class:`Progress` after each result.
        Breaking out of the loop cancels the runs still in flight, on the server too.
        """
        check.seconds(timeout, "timeout")  # validate everything once, before anything runs
        check.prefer_wait(wait)
        creator(
            self,
            ref,
            deployment=deployment,
            input={},
            wait=None,
            cancel_after=None,
            webhook=None,
            webhook_events_filter=None,
        )

        async def run_one(item: Mapping[str, Any]) -> tuple[Prediction | None, Any]:
            prediction = await self._run_prediction(
                ref,
                input=item,
                deployment=deployment,
                timeout=timeout,
                wait=wait,
                cancel_after=None,
            )
            return prediction, output_of(self._http, prediction, use_file_output)

        return run_many(run_one, inputs, concurrency=concurrency, on_progress=on_progress)

    def stream(
        self,
        ref: str | None = None,
        *,
        input: Mapping[str, Any],
        deployment: str | None = None,
        idle_timeout: float = 60.0,
        max_reconnects: int = 5,
        raise_on_error: bool = True,
    ) -> AsyncIterator[ServerSentEvent]:
        """Create a prediction and yield its server-sent events until ``done``.

        Events are ``output`` (text; or a file URL when the stream URL is under
        ``/v1/files/``: see :meth:`stream_output`), ``logs``, ``error`` (raised as
        :class:`StreamError` unless ``raise_on_error=False``) and ``done``; unknown types
        pass through. Dropped connections resume with ``Last-Event-ID``, losing and
        repeating nothing. If the stream is left before ``done`` (the consuming task is
        cancelled, or the loop is broken out of), the prediction is canceled on the
        server; wrap it in :func:`contextlib.aclosing` to have that happen at once.
        Arguments are checked here, before anything is sent.
        """
        create = self._stream_creator(ref, input, deployment, idle_timeout, max_reconnects)
        return self._events(create, idle_timeout, max_reconnects, raise_on_error, None)

    def stream_output(
        self,
        ref: str | None = None,
        *,
        input: Mapping[str, Any],
        deployment: str | None = None,
        idle_timeout: float = 60.0,
        max_reconnects: int = 5,
    ) -> AsyncIterator[str | FileOutput]:
        """Like :meth:`stream`, but yield only the outputs: text fragments, or
        :class:`FileOutput` objects when the model streams files (its stream URL is under
        ``/v1/files/``). An ``error`` event raises :class:`StreamError`."""
        create = self._stream_creator(ref, input, deployment, idle_timeout, max_reconnects)
        return self._outputs(create, idle_timeout, max_reconnects)

    def _stream_creator(
        self,
        ref: str | None,
        input: Mapping[str, Any],
        deployment: str | None,
        idle_timeout: float,
        max_reconnects: int,
    ) -> Callable[[], Awaitable[Prediction]]:
        """Check a stream's arguments now; return what creates its prediction."""
        if check.seconds(idle_timeout, "idle_timeout") is None:
            raise TypeError("idle_timeout must be a number of seconds")
        check.non_negative_int(max_reconnects, "max_reconnects")
        return creator(
            self,
            ref,
            deployment=deployment,
            input=input,
            wait=None,
            cancel_after=None,
            webhook=None,
            webhook_events_filter=None,
        )

    async def _outputs(
        self,
        create: Callable[[], Awaitable[Prediction]],
        idle_timeout: float,
        max_reconnects: int,
    ) -> AsyncIterator[str | FileOutput]:
        files: list[bool] = []

        def created(prediction: Prediction) -> None:
            url = prediction.urls.stream if prediction.urls else None
            files.append(bool(url) and urlsplit(url or "").path.startswith("/v1/files/"))

        events = self._events(create, idle_timeout, max_reconnects, True, created)
        async with contextlib.aclosing(events):
            async for event in events:
                if event.event == "output":
                    yield FileOutput(event.data, self._http) if files[0] else event.data

    async def _events(
        self,
        create: Callable[[], Awaitable[Prediction]],
        idle_timeout: float,
        max_reconnects: int,
        raise_on_error: bool,
        created: Callable[[Prediction], None] | None,
    ) -> AsyncGenerator[ServerSentEvent, None]:
        cancel = self.predictions.cancel
        creating = asyncio.ensure_future(create())
        try:
            prediction = await asyncio.shield(creating)
        except asyncio.CancelledError:
            # Cancelled mid-create: learn the id (bounded) and cancel it on the server.
            late = await settle(creating, cancel)
            if late is not None and not late.done:
                await cancel_quietly(cancel, late)
            raise
        if created is not None:
            created(prediction)
        finished = False
        try:
            async for event in self.predictions.stream(
                prediction,
                idle_timeout=idle_timeout,
                max_reconnects=max_reconnects,
                raise_on_error=raise_on_error,
            ):
                finished = event.event == "done"
                yield event
        finally:
            if not finished:
                # Abandoned (cancelled, broken out of, or failed mid-stream): nothing may
                # keep running, and billing, behind the caller's back.
                await cancel_quietly(cancel, prediction)

    def file_output(self, url: str) -> FileOutput:
        """A :class:`FileOutput` for an output URL (e.g. from a file stream's events)."""
        if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:")):
            raise ValueError(f"not a file URL: {url!r:.80}")
        return FileOutput(url, self._http)

    def __repr__(self) -> str:
        token = "set" if self._http._token else "missing"
        return f"AsyncReplicate(base_url={self.base_url!r}, token={token})"

    def __reduce__(self) -> Any:
        raise TypeError("AsyncReplicate cannot be pickled (it holds a secret and a session)")
