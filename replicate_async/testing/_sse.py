"""Server-sent events for a prediction's ``urls.stream``, with ``Last-Event-ID`` resume."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ._faults import Fault
from ._keys import FAULT
from ._records import FakePrediction
from ._runner import Runner

__all__ = ["format_event", "serve_stream"]


def format_event(event_id: str | None, event: str, data: str) -> bytes:
    """One SSE event: multi-line data becomes several ``data:`` lines."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


async def serve_stream(
    request: web.Request, prediction: FakePrediction, runner: Runner
) -> web.StreamResponse:
    """Replay the prediction's events (after ``Last-Event-ID``), then follow it live.

    A fault on the request may pause ``slow_events`` seconds between events, or cut the
    connection after ``drop_after_events`` events.
    """
    fault: Fault | None = request.get(FAULT)
    cut_after = fault.drop_after_events if fault is not None else None
    pause = fault.slow_events if fault is not None else None
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await resp.prepare(request)
    position = 0
    last_id = request.headers.get("Last-Event-ID")
    if last_id and last_id in prediction.event_positions:
        position = prediction.event_positions[last_id] + 1
    events = prediction.events
    written = 0
    try:
        while True:
            while position < len(events):
                if cut_after is not None and written >= cut_after:
                    _cut(request)
                    return resp
                if pause and written:
                    await asyncio.sleep(pause)
                event_id, event, data = events[position]
                position += 1
                await resp.write(format_event(event_id, event, data))
                written += 1
                if event == "done":
                    await resp.write_eof()
                    return resp
            if cut_after is not None and written >= cut_after:
                _cut(request)
                return resp
            if runner.closing:
                return resp
            await prediction.wait_changed().wait()
    except ConnectionError:
        return resp


def _cut(request: web.Request) -> None:
    """Close the connection mid-body (what was written is flushed first)."""
    if request.transport is not None:
        request.transport.close()
