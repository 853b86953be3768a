"""A lean, Replicate-shaped HTTP server for the benchmarks.

It answers at once with realistic, pre-encoded bodies (the shapes of ``tests/examples``) so
that what the benchmark measures is the client's cost, not the server's. It runs in its own
process (``python -m benchmarks.server``), listens on 127.0.0.1 on a free port and prints
that port on the first line of stdout.

Endpoints (under ``/v1``):

- ``POST /predictions``: 201, a ``starting`` prediction with a fresh id;
- ``GET /predictions/{id}``: a prediction created here answers ``processing`` until it has
  been polled ``polls`` times (default 3), then ``succeeded``; any other id is ``succeeded``;
- ``GET /models``: pages of 100 models out of ``models`` (default 50,000), with absolute
  ``next`` URLs carrying an opaque ``cursor``; the models are those of the example page
  (``shape=lean``, the default) or, with ``shape=live``, every whole model found in the
  recorded examples (``model-get-sdxl``, the models page, the collection) in turn: each with a
  ``default_example`` prediction (timestamps, ``urls``, ``metrics``) and a ``latest_version``
  with its ``openapi_schema``, as the live API returns them;
- ``GET /models/{owner}/{name}/versions/{id}``: the recorded SDXL version (its
  ``openapi_schema``), whatever the path names (what ``client.use()`` fetches once);
- ``GET /predictions/{id}/stream`` and ``GET /streams/{id}``: an SSE stream of ``events``
  ``output`` events (default 50,000), then ``done``.

Control endpoints (not counted as requests):

- ``GET /__stats``: the counters since the last reset as JSON, then resets them (``?peek=1``
  reads without resetting). ``cpu`` is this process's CPU seconds over the same period.
- ``POST /__config?models=N&polls=N&events=N&shape=lean|live&headers=live|none``: changes
  the sizes, the model shape and the rate-limit headers; forgets predictions.

Every API response carries the rate-limit headers the live API sends (``headers=live``, the
default; ``--no-live-headers`` or ``headers=none`` turns them off, to compare with figures
taken before they were sent): ``ratelimit-remaining`` 599 on creates, 59,999 on prediction
GETs, 2,999 elsewhere (pages, streams, versions), and ``ratelimit-reset: 1``. Every client,
raw aiohttp included, reads the same answers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

EXAMPLES = Path(__file__).resolve().parent.parent / "tests" / "examples"
PAGE_SIZE = 100
ID_MARK = b"@@ID@@"
NAME_MARK = b"@@NAME@@"
BASE_MARK = b"@@BASE@@"
#: ``ratelimit-remaining`` as the live API sends it, per kind of request.
LIVE_REMAINING = {"create": "599", "prediction_get": "59999", "other": "2999"}


def _rate_headers(kind: str) -> dict[str, str]:
    return {"ratelimit-remaining": LIVE_REMAINING[kind], "ratelimit-reset": "1"}


LIVE_HEADERS = {kind: _rate_headers(kind) for kind in LIVE_REMAINING}
NO_HEADERS: dict[str, dict[str, str]] = {kind: {} for kind in LIVE_REMAINING}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _prediction_template(name: str, *, stream: bool) -> bytes:
    """An example prediction with its id (and URLs) replaced by markers."""
    pred = _load(name)
    pred["id"] = "@@ID@@"
    urls = {
        "cancel": "@@BASE@@/v1/predictions/@@ID@@/cancel",
        "get": "@@BASE@@/v1/predictions/@@ID@@",
    }
    if stream:
        urls["stream"] = "@@BASE@@/v1/streams/@@ID@@"
    pred["urls"] = urls
    return _compact(pred)


def _live_models() -> list[dict[str, Any]]:
    """Every whole model of the recorded examples: one with a default example and a version."""
    found = [_load("model-get-sdxl.json")]
    found += _load("page-models-list-TRUNCATED.json")["results"]
    found += _load("collection-get-TRUNCATED.json")["models"]
    return [m for m in found if m.get("default_example") and m.get("latest_version")]


def _model_templates(shape: str = "lean") -> list[bytes]:
    """The example models, with owner/name (and URLs) replaced by markers."""
    if shape == "live":
        models = _live_models()
    else:
        models = _load("page-models-list-TRUNCATED.json")["results"]
    templates = []
    for model in models:
        model["owner"] = "bench"
        model["name"] = "@@NAME@@"
        model["url"] = "https://replicate.com/bench/@@NAME@@"
        templates.append(_compact(model))
    return templates


def _sse_body(events: int) -> bytes:
    """``events`` output events, then ``done`` (the shape of the saved transcripts)."""
    parts = [
        f"event: output\nid: 1690212292:{i}\ndata: token {i} of the story\n\n".encode()
        for i in range(events)
    ]
    parts.append(b"event: done\nid: 1690212292:done\ndata: {}\n\n")
    return b"".join(parts)


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"p={offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    text = base64.urlsafe_b64decode(cursor.encode()).decode()
    if not text.startswith("p="):
        raise ValueError("bad cursor")
    return int(text[2:])


class BenchServer:
    """The handlers and their state. One instance per process."""

    def __init__(self, *, models: int, polls: int, events: int, live_headers: bool = True) -> None:
        self.models = models
        self.headers = LIVE_HEADERS if live_headers else NO_HEADERS
        self.polls = polls
        self.events = events
        self._starting = _prediction_template("prediction-create-async-starting.json", stream=True)
        self._processing = _prediction_template("prediction-get-processing.json", stream=False)
        self._succeeded = _prediction_template("prediction-get-succeeded.json", stream=False)
        self.shape = "lean"
        self._models = _model_templates(self.shape)
        self._sse = _sse_body(events)
        self._version = _compact(_load("version-get-sdxl.json"))
        self._poll_counts: dict[str, int] = {}
        self._next_id = 0
        self._counters: dict[str, int] = {}
        self._cpu_mark = time.process_time()
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._counters = dict.fromkeys(
            ("requests", "creates", "gets", "pages", "streams", "versions", "over_polls"), 0
        )
        self._cpu_mark = time.process_time()

    def _count(self, what: str) -> None:
        counters = self._counters
        counters["requests"] += 1
        counters[what] += 1

    @staticmethod
    def _base(request: web.Request) -> bytes:
        return f"http://{request.host}".encode()

    # -- API ------------------------------------------------------------------------

    async def create_prediction(self, request: web.Request) -> web.Response:
        await request.read()  # a real server parses it; we only drain it
        self._count("creates")
        self._next_id += 1
        pid = f"bench{self._next_id:021d}"
        self._poll_counts[pid] = 0
        body = self._starting.replace(BASE_MARK, self._base(request)).replace(ID_MARK, pid.encode())
        return web.Response(
            status=201, body=body, content_type="application/json", headers=self.headers["create"]
        )

    async def get_prediction(self, request: web.Request) -> web.Response:
        self._count("gets")
        pid = request.match_info["id"]
        template = self._succeeded
        polls = self._poll_counts.get(pid)
        if polls is not None:
            polls += 1
            self._poll_counts[pid] = polls
            if polls < self.polls:
                template = self._processing
            elif polls > self.polls:
                self._counters["over_polls"] += 1
        body = template.replace(BASE_MARK, self._base(request)).replace(ID_MARK, pid.encode())
        headers = self.headers["prediction_get"]
        return web.Response(body=body, content_type="application/json", headers=headers)

    async def list_models(self, request: web.Request) -> web.Response:
        self._count("pages")
        cursor = request.query.get("cursor")
        try:
            start = _decode_cursor(cursor) if cursor else 0
        except ValueError:
            return web.json_response({"detail": "Invalid cursor", "status": 400}, status=400)
        stop = min(start + PAGE_SIZE, self.models)
        templates = self._models
        results = b",".join(
            templates[i % len(templates)].replace(NAME_MARK, b"model-%06d" % i)
            for i in range(start, stop)
        )
        base = f"http://{request.host}/v1/models"
        nxt = f'"{base}?cursor={_encode_cursor(stop)}"' if stop < self.models else "null"
        prev = f'"{base}?cursor={_encode_cursor(max(start - PAGE_SIZE, 0))}"' if start else "null"
        body = b'{"next":%s,"previous":%s,"results":[%s]}' % (
            nxt.encode(),
            prev.encode(),
            results,
        )
        return web.Response(
            body=body, content_type="application/json", headers=self.headers["other"]
        )

    async def get_version(self, request: web.Request) -> web.Response:
        self._count("versions")
        headers = self.headers["other"]
        return web.Response(body=self._version, content_type="application/json", headers=headers)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        self._count("streams")
        response = web.StreamResponse(
            headers={"Cache-Control": "no-store", **self.headers["other"]}
        )
        response.content_type = "text/event-stream"
        await response.prepare(request)
        body = self._sse
        view = memoryview(body)
        for offset in range(0, len(body), 65536):
            await response.write(bytes(view[offset : offset + 65536]))
        await response.write_eof()
        return response

    # -- control --------------------------------------------------------------------

    async def stats(self, request: web.Request) -> web.Response:
        result: dict[str, float] = dict(self._counters)
        result["cpu"] = time.process_time() - self._cpu_mark
        if request.query.get("peek") != "1":
            self._reset_counters()
        return web.json_response(result)

    async def configure(self, request: web.Request) -> web.Response:
        query = request.query
        self.models = int(query.get("models", self.models))
        self.polls = int(query.get("polls", self.polls))
        events = int(query.get("events", self.events))
        if events != self.events:
            self.events = events
            self._sse = _sse_body(events)
        shape = query.get("shape", self.shape)
        if shape != self.shape:
            if shape not in ("lean", "live"):
                return web.json_response({"detail": f"unknown shape {shape!r}"}, status=400)
            self.shape = shape
            self._models = _model_templates(shape)
        headers = query.get("headers")
        if headers is not None:
            if headers not in ("live", "none"):
                return web.json_response({"detail": f"unknown headers {headers!r}"}, status=400)
            self.headers = LIVE_HEADERS if headers == "live" else NO_HEADERS
        self._poll_counts.clear()
        self._reset_counters()
        sizes = {"models": self.models, "polls": self.polls, "events": events}
        return web.json_response({**sizes, "shape": shape})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/predictions", self.create_prediction)
        app.router.add_get("/v1/predictions/{id}", self.get_prediction)
        app.router.add_get("/v1/predictions/{id}/stream", self.stream)
        app.router.add_get("/v1/streams/{id}", self.stream)
        app.router.add_get("/v1/models", self.list_models)
        app.router.add_get("/v1/models/{owner}/{name}/versions/{id}", self.get_version)
        app.router.add_get("/__stats", self.stats)
        app.router.add_post("/__config", self.configure)
        return app


async def serve(server: BenchServer, *, port: int, max_seconds: float) -> None:
    """Serve until SIGTERM/SIGINT, or ``max_seconds`` (a safety net if the parent dies)."""
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    site = web.SockSite(runner, sock, backlog=1024, shutdown_timeout=1.0)
    await site.start()
    print(sock.getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=max_seconds)
    except TimeoutError:
        print("benchmark server: max lifetime reached, exiting", file=sys.stderr)
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--models", type=int, default=50_000)
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument(
        "--no-live-headers",
        action="store_true",
        help="no ratelimit-remaining/ratelimit-reset headers (the old server's answers)",
    )
    args = parser.parse_args(argv)
    server = BenchServer(
        models=args.models,
        polls=args.polls,
        events=args.events,
        live_headers=not args.no_live_headers,
    )
    asyncio.run(serve(server, port=args.port, max_seconds=args.max_seconds))


if __name__ == "__main__":
    main()
