"""Starting a prediction from the command line, streaming it, and opening its web page."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import APIConnectionError, ReplicateError, StreamError
from ._errors import describe_error
from ._lifecycle import cancel_confirmed
from ._runtime import CLIError, Interrupted, StillRunning
from ._signals import absorb_cancel

if TYPE_CHECKING:
    from .. import AsyncReplicate, Prediction
    from ._output import Output

__all__ = ["create_prediction", "open_web", "start_prediction", "stream_prediction"]

MAYBE_CREATED = (
    "the prediction may have been created and may be running; its id is unknown "
    "(see `replicate-async predictions list --limit 3`)"
)


async def create_prediction(
    client: AsyncReplicate,
    ref: str,
    *,
    deployment: bool,
    input: dict[str, Any],
    wait: int | None = None,
    webhook: str | None = None,
    stream: bool | None = None,
) -> Prediction:
    """Create a prediction on a model (``owner/name``), a version, or a deployment."""
    options: dict[str, Any] = {"input": input, "wait": wait, "webhook": webhook, "stream": stream}
    if deployment:
        return await client.deployments.predictions.create(ref, **options)
    if ":" in ref or "/" not in ref:
        return await client.predictions.create(version=ref, **options)
    return await client.models.predictions.create(ref, **options)


async def start_prediction(
    client: AsyncReplicate,
    out: Output,
    ref: str,
    *,
    deployment: bool,
    input: dict[str, Any],
    hold: int,
    stream: bool,
    timeout: float | None,
    since: float | None = None,
) -> Prediction:
    """Create the prediction (the spinner counts from ``since``, a loop time). Ctrl-C
    meanwhile waits for the server's answer (bounded by the hold), then cancels the
    prediction it names; a second Ctrl-C gives up waiting."""
    creating = asyncio.ensure_future(
        create_prediction(
            client,
            ref,
            deployment=deployment,
            input=input,
            wait=hold or None,
            stream=stream or None,
        )
    )
    try:
        async with asyncio.timeout(timeout):
            with out.status(f"Starting {ref}…", since=since):
                return await asyncio.shield(creating)
    except asyncio.CancelledError:
        absorb_cancel()
        out.say("Waiting for the server's answer, to cancel the prediction… (Ctrl-C again to stop)")
        try:
            prediction = await creating
        except asyncio.CancelledError:
            absorb_cancel()
            raise StillRunning(f"stopped waiting: {MAYBE_CREATED}") from None
        except ReplicateError as exc:
            raise Interrupted(
                f"Interrupted: nothing was started ({describe_error(exc)})."
            ) from None
        outcome = await cancel_confirmed(client, out, "prediction", prediction.id)
        raise Interrupted(f"Interrupted: {outcome}.") from None
    except TimeoutError:
        creating.cancel()
        raise StillRunning(
            f"no answer to the create request within {timeout:g}s: {MAYBE_CREATED}"
        ) from None


def open_web(out: Output, prediction: Prediction) -> None:
    """Open the prediction's page in a browser (``BROWSER`` is honoured)."""
    import webbrowser

    url = prediction.urls.web if prediction.urls is not None else None
    url = url or f"https://replicate.com/p/{prediction.id}"
    out.note(f"Opening {url} in your browser")
    if not webbrowser.open(url):
        out.say(f"could not open a browser; the page is {url}")


async def _print_events(
    client: AsyncReplicate, out: Output, prediction: Prediction, output_dir: Path | None
) -> None:
    from ._saver import OutputSaver

    saver = OutputSaver(client, output_dir / prediction.id) if output_dir is not None else None
    wrote = False
    events = client.predictions.stream(prediction)
    async with contextlib.aclosing(events):
        async for event in events:
            if out.json:
                out.emit_json({"event": event.event, "id": event.id, "data": event.data})
            elif event.event == "output":
                if saver is not None and event.data.startswith(("https://", "http://", "data:")):
                    out.write(await saver.save_one(event.data) + "\n")
                else:
                    out.write(event.data)
                    wrote = True
    if wrote:
        out.write("\n")


async def stream_prediction(
    client: AsyncReplicate,
    out: Output,
    prediction: Prediction,
    output_dir: Path | None,
    timeout: float | None,
    announced: float | None,
) -> None:
    """Print a prediction's output events as they come; Ctrl-C or the deadline (``timeout``
    seconds from now; ``announced`` as the user gave it) cancels it."""
    try:
        async with asyncio.timeout(timeout):
            await _print_events(client, out, prediction, output_dir)
    except asyncio.CancelledError:
        absorb_cancel()
        outcome = await cancel_confirmed(client, out, "prediction", prediction.id)
        raise Interrupted(f"Interrupted: {outcome}.") from None
    except TimeoutError:
        outcome = await cancel_confirmed(client, out, "prediction", prediction.id)
        raise CLIError(f"no result within {announced or timeout:g}s: {outcome}") from None
    except (APIConnectionError, StreamError) as exc:
        ended = await _ended(client, prediction.id) if isinstance(exc, StreamError) else None
        if ended is not None:  # the model's own error event: the prediction is over
            error = f": {ended.error}" if ended.error else ""
            raise CLIError(f"prediction {ended.id} {ended.status}{error}") from None
        raise StillRunning(
            f"{describe_error(exc)}; prediction {prediction.id} may still be running "
            f"(check with `replicate-async predictions get {prediction.id}`)"
        ) from None


async def _ended(client: AsyncReplicate, prediction_id: str) -> Prediction | None:
    """The prediction if the server says it is over (``None`` if not, or it cannot say)."""
    from ..models import TERMINAL_STATUSES

    try:
        found = await client.predictions.get(prediction_id)
    except ReplicateError:
        return None
    return found if found.status in TERMINAL_STATUSES else None
