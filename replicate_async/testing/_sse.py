"""Server-sent events for a prediction's ``urls.stream``, with ``Last-Event-ID`` resume."""

from __future__ import annotations

from aiohttp import web

from ._records import Prediction
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
    request: web.Request, prediction: Prediction, runner: Runner
) -> web.StreamResponse:
    """Replay the prediction's events (after ``Last-Event-ID``), then follow it live."""
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await resp.prepare(request)
    position = 0
    last_id = request.headers.get("Last-Event-ID")
    if last_id and last_id in prediction.event_positions:
        position = prediction.event_positions[last_id] + 1
    events = prediction.events
    try:
        while True:
            while position < len(events):
                event_id, event, data = events[position]
                position += 1
                await resp.write(format_event(event_id, event, data))
                if event == "done":
                    await resp.write_eof()
                    return resp
            if runner.closing:
                return resp
            await prediction.wait_changed().wait()
    except ConnectionError:
        return resp
