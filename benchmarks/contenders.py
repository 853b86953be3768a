"""The clients under test, behind one small interface so every scenario runs them alike.

- :class:`ThisSDK`: ``replicate_async.AsyncReplicate`` through its lower-layer calls
  (``predictions.create``/``get``/``wait``/``stream``, ``models.list``); with
  ``REPLICATE_ASYNC_BEFORE`` set to a directory holding an older copy of the package renamed
  ``replicate_async_before``, that copy runs too (the "before" of a change, in the same run);
- :class:`ThisSDKVia`: the same client through the calls users make on top of those
  (``client.run``, ``run_many``, ``use()`` in scenario d; ``client.stream``,
  ``stream_output`` in scenario e), each a row of its own beside the lower layer's;
- :class:`RawAiohttp`: the floor: one ``aiohttp.ClientSession`` and ``await resp.json()``;
- :class:`RawLineParser`: a second SSE floor (scenario e only): a plain line parser;
- :class:`Official`: Replicate's ``replicate`` package (1.x, its ``async_*`` methods), only
  when it is importable (it is installed in the bench environment only).

Each method does the same HTTP calls and returns something the harness checks (a status,
an item count), so that no client can skip work.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata
from typing import Any, ClassVar

import aiohttp

TOKEN = "r8_bench"
VERSION = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
INPUT: dict[str, Any] = {
    "prompt": "a studio photo of a rainbow colored corgi",
    "width": 512,
    "height": 512,
    "seed": 42069,
}
#: The polling interval of scenario d (and of the clients' own poll policies).
POLL_INTERVAL = 0.1
#: Bounds every polling loop: a prediction that needs more polls than this is a bug.
MAX_POLLS = 50
#: Bounds every page walk, in pages, beyond the expected count.
MAX_EXTRA_PAGES = 2
SSE_CHUNK = 65536
#: The environment variable naming the directory of the "before" copy of the SDK.
BEFORE_ENV = "REPLICATE_ASYNC_BEFORE"
BEFORE_PACKAGE = "replicate_async_before"

OnFirst = Callable[[], Awaitable[None]]


class Contender:
    """One client. ``name`` labels the table; ``notes`` says how a scenario was run."""

    name = "?"
    #: The scenario keys (first letters) this client runs; ``None``: all of them.
    scenarios: frozenset[str] | None = None

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.notes: dict[str, str] = {}

    async def open(self) -> None:
        """Create the client (inside the running loop)."""

    async def close(self) -> None:
        """Release connections."""

    async def create(self) -> str:
        """``POST /predictions``; returns the status."""
        raise NotImplementedError

    async def get(self, prediction_id: str) -> str:
        """``GET /predictions/{id}``; returns the status."""
        raise NotImplementedError

    async def walk_models(self, max_pages: int, on_first: OnFirst) -> int:
        """Every model of ``GET /models``, page after page; returns how many."""
        raise NotImplementedError

    async def run_and_wait(self, interval: float) -> str:
        """Create a prediction and wait for it with the client's own helper."""
        raise NotImplementedError

    async def stream(self, url: str) -> int:
        """Read an SSE stream until ``done``; returns how many ``output`` events."""
        raise NotImplementedError

    def structure(self, items: list[dict[str, Any]]) -> int:
        """Turn decoded prediction JSON into the client's objects; returns how many."""
        raise NotImplementedError

    #: ``run_batch(count, concurrency)``: a client whose call runs many predictions itself
    #: (``run_many``) runs scenario d through it instead of one ``run_and_wait`` per worker.
    run_batch: Callable[[int, int], Awaitable[list[str]]] | None = None


class RawAiohttp(Contender):
    """The floor: what the same calls cost with plain aiohttp and ``resp.json()``."""

    name = "raw aiohttp"

    def __init__(self, server_url: str) -> None:
        super().__init__(server_url)
        self._base = server_url + "/v1"
        self._headers = {"Authorization": f"Bearer {TOKEN}"}
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "open() first"
        return self._session

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get_json(self, url: str) -> Any:
        async with self.session.get(url, headers=self._headers) as resp:
            if resp.status >= 400:
                raise RuntimeError(f"HTTP {resp.status} from {url}")
            return await resp.json()

    async def create(self) -> str:
        body = {"version": VERSION, "input": INPUT}
        url = self._base + "/predictions"
        async with self.session.post(url, json=body, headers=self._headers) as resp:
            if resp.status >= 400:
                raise RuntimeError(f"HTTP {resp.status} from {url}")
            data = await resp.json()
        status: str = data["status"]
        return status

    async def get(self, prediction_id: str) -> str:
        data = await self._get_json(f"{self._base}/predictions/{prediction_id}")
        status: str = data["status"]
        return status

    async def walk_models(self, max_pages: int, on_first: OnFirst) -> int:
        url: str | None = self._base + "/models"
        count = 0
        for _ in range(max_pages):
            if url is None:
                return count
            page = await self._get_json(url)
            for _item in page["results"]:
                if count == 0:
                    await on_first()
                count += 1
            url = page["next"]
        raise RuntimeError(f"walk did not end within {max_pages} pages")

    async def run_and_wait(self, interval: float) -> str:
        self.notes["d"] = f"sleep {interval} s, GET, until terminal"
        body = {"version": VERSION, "input": INPUT}
        async with self.session.post(
            self._base + "/predictions", json=body, headers=self._headers
        ) as resp:
            data = await resp.json()
        for _ in range(MAX_POLLS):
            if data["status"] in ("succeeded", "failed", "canceled"):
                status: str = data["status"]
                return status
            await asyncio.sleep(interval)
            data = await self._get_json(f"{self._base}/predictions/{data['id']}")
        raise RuntimeError("prediction did not finish within MAX_POLLS polls")

    async def stream(self, url: str) -> int:
        self.notes["e"] = 'iter_chunked(65536), split on b"\\n\\n"'
        headers = {**self._headers, "Accept": "text/event-stream"}
        count = 0
        buffer = b""
        async with self.session.get(url, headers=headers) as resp:
            async for chunk in resp.content.iter_chunked(SSE_CHUNK):
                blocks = (buffer + chunk).split(b"\n\n")
                buffer = blocks.pop()
                for block in blocks:
                    if block.startswith(b"event: done"):
                        return count
                    count += 1
        raise RuntimeError("the stream ended without a done event")

    def structure(self, items: list[dict[str, Any]]) -> int:
        self.notes["f"] = "dict(d) copy"
        return len([dict(item) for item in items])


class RawLineParser(RawAiohttp):
    """The SSE floor any conforming decoder can be held to: ``iter_any()``, split lines,
    ``partition``, UTF-8 text out, one object per event; none of the spec's corner cases
    (``\\r`` line ends, a BOM, comments, ``retry``, size limits, resuming)."""

    name = "raw aiohttp, line parser"
    scenarios = frozenset("e")

    async def stream(self, url: str) -> int:
        self.notes["e"] = "iter_any(), split lines, partition, (event, data, id) per event"
        headers = {**self._headers, "Accept": "text/event-stream"}
        count = 0
        pending = b""
        event, last_id = "", None
        data: list[str] = []
        async with self.session.get(url, headers=headers) as resp:
            async for chunk in resp.content.iter_any():
                lines = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if not line:
                        if data:
                            item = (event or "message", "\n".join(data), last_id)
                            if item[0] == "done":
                                return count
                            count += 1
                        event, data = "", []
                        continue
                    name, _, value = line.decode().partition(":")
                    if value[:1] == " ":
                        value = value[1:]
                    if name == "data":
                        data.append(value)
                    elif name == "event":
                        event = value
                    elif name == "id":
                        last_id = value
        raise RuntimeError("the stream ended without a done event")


class ThisSDK(Contender):
    """``replicate_async.AsyncReplicate``, through its public methods."""

    name = "replicate_async"

    def __init__(self, server_url: str, package: str = "replicate_async") -> None:
        super().__init__(server_url)
        self._package = package
        self._helpers: dict[float, tuple[Callable[[Any], Awaitable[Any]] | None, str]] = {}
        self._pkg: Any = importlib.import_module(package)
        self._client = self._pkg.AsyncReplicate(
            api_token=TOKEN,
            base_url=server_url + "/v1",
            max_connections=100,
            # What run() and friends poll with: equal intervals, as the hand-written loop.
            poll=self._pkg.PollPolicy(
                initial=POLL_INTERVAL, factor=1.0, maximum=POLL_INTERVAL, jitter=0.0
            ),
        )

    async def open(self) -> None:
        await self._client.__aenter__()

    async def close(self) -> None:
        await self._client.aclose()

    async def create(self) -> str:
        prediction = await self._client.predictions.create(version=VERSION, input=INPUT)
        status: str = prediction.status
        return status

    async def get(self, prediction_id: str) -> str:
        prediction = await self._client.predictions.get(prediction_id)
        status: str = prediction.status
        return status

    async def walk_models(self, max_pages: int, on_first: OnFirst) -> int:
        self.notes["c"] = "async for model in client.models.list()"
        stats = self._client.stats
        last = stats["requests"] + max_pages
        count = 0
        items: Any = aiter(self._client.models.list())  # an async generator
        async with contextlib.aclosing(items):
            async for _model in items:
                if count == 0:
                    await on_first()
                count += 1
                if stats["requests"] > last:
                    raise RuntimeError(f"walk did not end within {max_pages} pages")
        return count

    def _wait_helper(self, interval: float) -> tuple[Callable[[Any], Awaitable[Any]] | None, str]:
        """``predictions.wait`` when it exists, set to poll every ``interval`` seconds."""
        wait = getattr(self._client.predictions, "wait", None)
        if wait is None:
            return None, f"no predictions.wait yet: get() loop, {interval} s"
        params = inspect.signature(wait).parameters
        kwargs: dict[str, Any] = {}
        if "poll" in params:
            # The same interval every time, as the hand-written loop: no growth, no jitter.
            kwargs["poll"] = self._pkg.PollPolicy(
                initial=interval, factor=1.0, maximum=interval, jitter=0.0
            )
            shown = f"poll=PollPolicy(initial={interval}, factor=1, jitter=0)"
        else:
            for name in ("interval", "poll_interval"):
                if name in params:
                    kwargs[name] = interval
            shown = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "defaults"
        by_id = next(iter(params), "").endswith("id")
        note = f"predictions.wait({'id' if by_id else 'prediction'}, {shown})"

        async def call(prediction: Any) -> Any:
            return await wait(prediction.id if by_id else prediction, **kwargs)

        return call, note

    async def run_and_wait(self, interval: float) -> str:
        # Looked up once per interval: the signature inspection is the harness's, not the SDK's.
        helper = self._helpers.get(interval)
        if helper is None:
            helper = self._helpers[interval] = self._wait_helper(interval)
        wait, self.notes["d"] = helper
        predictions = self._client.predictions
        prediction = await predictions.create(version=VERSION, input=INPUT)
        if wait is not None:
            result = await wait(prediction)
            status: str = result.status
            return status
        for _ in range(MAX_POLLS):
            if prediction.done:
                done: str = prediction.status
                return done
            await asyncio.sleep(interval)
            prediction = await predictions.get(prediction.id)
        raise RuntimeError("prediction did not finish within MAX_POLLS polls")

    def _events(self, url: str) -> AsyncIterator[Any] | None:
        """The SDK's public ``predictions.stream`` if it has one, else its SSE decoder."""
        public = getattr(self._client.predictions, "stream", None)
        if public is not None:
            models: Any = importlib.import_module(self._package + ".models")
            Prediction, PredictionURLs = models.Prediction, models.PredictionURLs
            self.notes["e"] = "predictions.stream(prediction)"
            prediction = Prediction(
                id="benchstream", status="processing", urls=PredictionURLs(stream=url)
            )
            events: AsyncIterator[Any] = public(prediction)
            return events
        try:
            iter_sse = importlib.import_module(self._package + "._sse").iter_sse
        except ImportError:
            self.notes["e"] = "n/a (no predictions.stream, no replicate_async._core.sse)"
            return None
        self.notes["e"] = "_http.stream + _sse.iter_sse over iter_chunked(65536)"
        return self._decoded(url, iter_sse)

    async def _decoded(self, url: str, iter_sse: Any) -> AsyncIterator[Any]:
        headers = {"Accept": "text/event-stream"}
        async with self._client._http.stream("GET", url, headers=headers) as resp:
            async for event in iter_sse(resp.content.iter_chunked(SSE_CHUNK)):
                yield event

    async def stream(self, url: str) -> int:
        events: Any = self._events(url)
        if events is None:
            return -1
        count = 0
        async with contextlib.aclosing(events):
            async for event in events:
                if event.event == "done":
                    return count
                count += 1
        raise RuntimeError("the stream ended without a done event")

    def structure(self, items: list[dict[str, Any]]) -> int:
        structure = importlib.import_module(self._package + "._converter").structure
        Prediction = self._pkg.Prediction
        self.notes["f"] = "_converter.structure(d, Prediction)"
        return len([structure(item, Prediction) for item in items])


class ThisSDKVia(ThisSDK):
    """This SDK through one of the calls users make (``via``), in the scenario it fits.

    - ``client.run``: ``await client.run(VERSION, input=INPUT)``, polling with the client's
      ``PollPolicy`` of equal intervals (d);
    - ``run_many``: ``client.run_many(VERSION, inputs, concurrency=100)``, all of d's
      predictions from one call;
    - ``use()``: ``await fn(**INPUT)`` for ``fn = client.use("stability-ai/sdxl:VERSION")``
      (its schema fetched once, in the warm-up; every input checked against it) (d);
    - ``client.stream``: ``client.stream(VERSION, input=INPUT)``: one create, then the
      created prediction's events (e);
    - ``stream_output``: ``client.stream_output(VERSION, input=INPUT)``: the outputs only (e).
    """

    CALLS: ClassVar[dict[str, str]] = {
        "client.run": "d",
        "run_many": "d",
        "use()": "d",
        "client.stream": "e",
        "stream_output": "e",
    }

    def __init__(self, server_url: str, via: str, package: str = "replicate_async") -> None:
        super().__init__(server_url, package)
        self.via = via
        self.name = f"replicate_async {via}"
        self.scenarios = frozenset(self.CALLS[via])
        self._fn: Any = None
        if via == "run_many":
            self.run_batch = self._run_many

    async def run_and_wait(self, interval: float) -> str:
        client = self._client
        if self.via == "client.run":
            self.notes["d"] = "await client.run(version, input=...), PollPolicy(0.1, factor=1)"
            output = await client.run(VERSION, input=INPUT)
        else:
            self.notes["d"] = 'await fn(**input), fn = client.use("owner/name:version")'
            if self._fn is None:
                self._fn = client.use(f"stability-ai/sdxl:{VERSION}")
            output = await self._fn(**INPUT)
        # run() returns the output, not the prediction: a succeeded one has it.
        return "succeeded" if output else "no output"

    async def _run_many(self, count: int, concurrency: int) -> list[str]:
        self.notes["d"] = "async for r in client.run_many(version, inputs, concurrency=100)"
        results = self._client.run_many(VERSION, [INPUT] * count, concurrency=concurrency)
        statuses = []
        async with contextlib.aclosing(results):
            async for result in results:
                statuses.append(result.prediction.status if result.ok else repr(result.error))
        return statuses

    async def stream(self, url: str) -> int:
        # The server's create answers with its own stream URL; ``url`` is the same stream.
        client = self._client
        count = 0
        if self.via == "client.stream":
            self.notes["e"] = "client.stream(version, input=...)"
            events: Any = client.stream(VERSION, input=INPUT)
            async with contextlib.aclosing(events):
                async for event in events:
                    if event.event == "output":
                        count += 1
            return count
        self.notes["e"] = "client.stream_output(version, input=...)"
        outputs: Any = client.stream_output(VERSION, input=INPUT)
        async with contextlib.aclosing(outputs):
            async for _output in outputs:
                count += 1
        return count


def _before(server_url: str) -> list[ThisSDK]:
    """The "before" copy of the SDK (each of its calls), if ``REPLICATE_ASYNC_BEFORE``
    names its directory."""
    where = os.environ.get(BEFORE_ENV)
    if not where:
        return []
    if where not in sys.path:
        sys.path.append(where)
    found = [ThisSDK(server_url, package=BEFORE_PACKAGE)]
    found += [ThisSDKVia(server_url, via, package=BEFORE_PACKAGE) for via in ThisSDKVia.CALLS]
    for client in found:
        client.name += " (before)"
    return found


class Official(Contender):
    """Replicate's ``replicate`` 1.x package, through its ``async_*`` methods.

    Built with its defaults (``replicate.Client(api_token=, base_url=)``), as users do:
    httpx's pool of 100 connections of which 20 are kept alive, and its RetryTransport.
    """

    name = "replicate (official)"

    def __init__(self, server_url: str) -> None:
        super().__init__(server_url)
        replicate: Any = importlib.import_module("replicate")  # 1.x and 2.x differ
        version = metadata.version("replicate")
        if not version.startswith("1."):
            raise ImportError(f"replicate {version} is not 1.x")
        self.name = f"replicate {version}"
        self._replicate = replicate
        # The official client's paths start with /v1; its base URL is the host.
        self._client: Any = replicate.Client(api_token=TOKEN, base_url=server_url)

    async def close(self) -> None:
        await self._client._async_client.aclose()

    async def create(self) -> str:
        prediction = await self._client.predictions.async_create(version=VERSION, input=INPUT)
        status: str = prediction.status
        return status

    async def get(self, prediction_id: str) -> str:
        prediction = await self._client.predictions.async_get(prediction_id)
        status: str = prediction.status
        return status

    async def walk_models(self, max_pages: int, on_first: OnFirst) -> int:
        self.notes["c"] = "async_paginate(client.models.async_list)"
        count = 0
        pages = self._replicate.async_paginate(self._client.models.async_list)
        async with contextlib.aclosing(pages):
            done = 0
            async for page in pages:
                for _model in page:
                    if count == 0:
                        await on_first()
                    count += 1
                done += 1
                if done > max_pages:
                    raise RuntimeError(f"walk did not end within {max_pages} pages")
        return count

    async def run_and_wait(self, interval: float) -> str:
        # async_run would also GET the version's schema first; async_create + async_wait
        # is the same polling without that extra request.
        self.notes["d"] = f"async_create + Prediction.async_wait, poll_interval={interval}"
        self._client.poll_interval = interval
        prediction = await self._client.predictions.async_create(version=VERSION, input=INPUT)
        await prediction.async_wait()
        status: str = prediction.status
        return status

    async def stream(self, url: str) -> int:
        from replicate.prediction import Prediction
        from replicate.stream import ServerSentEvent

        self.notes["e"] = "Prediction.async_stream()"
        prediction = Prediction(
            id="bench-stream",
            model="stability-ai/sdxl",
            version=VERSION,
            status="processing",
            input=INPUT,
            output=None,
            logs=None,
            error=None,
            metrics=None,
            created_at=None,
            started_at=None,
            completed_at=None,
            urls={"stream": url},
        )
        prediction._client = self._client
        count = 0
        events: Any = prediction.async_stream()  # an async generator
        async with contextlib.aclosing(events):
            async for event in events:
                if event.event == ServerSentEvent.EventType.DONE:
                    return count
                count += 1
        raise RuntimeError("the stream ended without a done event")

    def structure(self, items: list[dict[str, Any]]) -> int:
        from replicate.prediction import Prediction

        self.notes["f"] = "pydantic Prediction(**d)"
        return len([Prediction(**item) for item in items])


class OfficialV2(Contender):
    """Replicate's 2.x pre-release (generated, httpx-based): ``replicate.AsyncReplicate``.

    Used instead of :class:`Official` when the installed ``replicate`` is 2.x (a separate
    environment: ``pip install --pre replicate``). It has no SSE support.
    """

    name = "replicate 2.x"

    def __init__(self, server_url: str) -> None:
        super().__init__(server_url)
        replicate: Any = importlib.import_module("replicate")  # 1.x and 2.x differ
        version = metadata.version("replicate")
        if not version.startswith("2."):
            raise ImportError(f"replicate {version} is not 2.x")
        self.name = f"replicate {version}"
        self._client: Any = replicate.AsyncReplicate(
            bearer_token=TOKEN, base_url=server_url + "/v1"
        )

    async def close(self) -> None:
        await self._client.close()

    async def create(self) -> str:
        prediction = await self._client.predictions.create(version=VERSION, input=INPUT)
        status: str = prediction.status
        return status

    async def get(self, prediction_id: str) -> str:
        prediction = await self._client.predictions.get(prediction_id=prediction_id)
        status: str = prediction.status
        return status

    async def walk_models(self, max_pages: int, on_first: OnFirst) -> int:
        self.notes["c"] = "async for model in client.models.list()"
        count = 0
        async for _model in self._client.models.list():
            if count == 0:
                await on_first()
            count += 1
            if count > max_pages * 100:
                raise RuntimeError(f"walk did not end within {max_pages} pages")
        return count

    async def run_and_wait(self, interval: float) -> str:
        # 2.x reads its poll interval from the environment on every poll.
        os.environ["REPLICATE_POLL_INTERVAL"] = str(interval)
        self.notes["d"] = f"create + predictions.wait(id), REPLICATE_POLL_INTERVAL={interval}"
        predictions = self._client.predictions
        prediction = await predictions.create(version=VERSION, input=INPUT)
        prediction = await predictions.wait(prediction_id=prediction.id)
        status: str = prediction.status
        return status

    async def stream(self, url: str) -> int:
        self.notes["e"] = "n/a: 2.x has no SSE support"
        return -1

    def structure(self, items: list[dict[str, Any]]) -> int:
        from replicate._models import construct_type
        from replicate.types import Prediction

        self.notes["f"] = "construct_type(Prediction) (what its responses use)"
        return len([construct_type(type_=Prediction, value=item) for item in items])


def contenders(server_url: str) -> tuple[list[Contender], str]:
    """The contenders to run, and a note on the official client's availability."""
    found: list[Contender] = [ThisSDK(server_url)]
    found += [ThisSDKVia(server_url, via) for via in ThisSDKVia.CALLS]
    found += _before(server_url)
    found += [RawAiohttp(server_url), RawLineParser(server_url)]
    errors = []
    for official in (Official, OfficialV2):
        try:
            found.append(official(server_url))
            return found, ""
        except ImportError as exc:
            errors.append(str(exc))
    return found, f"official client: not installed or unsupported ({'; '.join(errors)})"


async def timed_first(mark: list[float]) -> None:
    """An ``on_first`` callback that records when the first item arrived."""
    mark.append(time.perf_counter())
