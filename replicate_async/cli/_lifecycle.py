"""Waiting for a prediction or training, following its logs, and canceling it truthfully.

What the command line promises about a run it started or waits for:

- "canceled" is only printed after the server said ``canceled``;
- a second Ctrl-C while canceling stops waiting and says plainly that the run may still
  be going, with its id (exit status 3);
- on a timeout or a lost connection the id is printed too, with the command to check it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import APIConnectionError, ReplicateError
from ..models import TERMINAL_STATUSES, Prediction, Training
from ._errors import describe_error
from ._runtime import CLIError, Interrupted, StillRunning
from ._signals import absorb_cancel

if TYPE_CHECKING:
    from .. import AsyncReplicate
    from ._output import Output

__all__ = ["Kind", "cancel_confirmed", "follow_logs", "print_logs", "wait_for_run"]

Kind = Literal["prediction", "training"]
#: How long a cancel may take to be confirmed before we say we could not confirm it.
CANCEL_CONFIRM = 15.0
#: Seconds between looks at a run while following its logs.
FOLLOW_EVERY = 1.0


def _resource(client: AsyncReplicate, kind: Kind) -> Any:
    return client.predictions if kind == "prediction" else client.trainings


def _check(kind: Kind, run_id: str) -> str:
    return f"`replicate-async {kind}s get {run_id}`"


async def cancel_confirmed(client: AsyncReplicate, out: Output, kind: Kind, run_id: str) -> str:
    """Cancel a run and wait (bounded) until the server reports it ended; return what
    happened, e.g. ``prediction abc was canceled on the server``.

    Raises :class:`StillRunning` (exit 3) when the cancel could not be confirmed, or when
    a further Ctrl-C stopped the wait.
    """
    resource = _resource(client, kind)
    out.say(f"Canceling {kind} {run_id} on the server… (Ctrl-C again to stop waiting)")
    try:
        async with asyncio.timeout(CANCEL_CONFIRM):
            run = await resource.cancel(run_id)
            while run.status not in TERMINAL_STATUSES:
                await asyncio.sleep(0.5)
                run = await resource.get(run_id)
    except asyncio.CancelledError:
        absorb_cancel()
        raise StillRunning(
            f"stopped waiting for the cancel: {kind} {run_id} may still be running "
            f"(check with {_check(kind, run_id)}, cancel with "
            f"`replicate-async {kind}s cancel {run_id}`)"
        ) from None
    except (TimeoutError, ReplicateError) as exc:
        why = "no confirmation in time" if isinstance(exc, TimeoutError) else describe_error(exc)
        raise StillRunning(
            f"could not cancel {kind} {run_id} ({why}); it may still be running "
            f"(check with {_check(kind, run_id)})"
        ) from None
    if run.status == "canceled":
        return f"{kind} {run_id} was canceled on the server"
    return f"{kind} {run_id} had already {run.status} (nothing to cancel)"


async def wait_for_run(
    client: AsyncReplicate,
    out: Output,
    run: Prediction | Training,
    *,
    timeout: float | None,
    keep_running: bool = False,
    label: str = "",
    announced: float | None = None,
    since: float | None = None,
) -> Any:
    """Wait until ``run`` is terminal; on Ctrl-C or timeout cancel it (unless
    ``keep_running``) and say exactly what happened; on a lost connection, give its id.
    ``announced`` is the deadline as the user gave it (``timeout`` may be what is left);
    the spinner counts from ``since`` (a loop time, default now)."""
    kind: Kind = "training" if isinstance(run, Training) else "prediction"
    if run.status in TERMINAL_STATUSES:
        return run
    resource = _resource(client, kind)
    try:
        async with asyncio.timeout(timeout):
            with out.status(f"{label or 'Waiting for'} {kind} {run.id}…", since=since):
                return await resource.wait(run, cancel_on_abandon=False)
    except asyncio.CancelledError:
        absorb_cancel()
        if keep_running:
            raise Interrupted(
                f"Interrupted: {kind} {run.id} was left running (not canceled); "
                f"check it with {_check(kind, run.id)}"
            ) from None
        outcome = await cancel_confirmed(client, out, kind, run.id)
        raise Interrupted(f"Interrupted: {outcome}.") from None
    except TimeoutError:
        limit = announced if announced is not None else timeout
        if keep_running:
            raise StillRunning(
                f"{kind} {run.id} did not finish within {limit:g}s and was left running "
                f"(check it with {_check(kind, run.id)})"
            ) from None
        outcome = await cancel_confirmed(client, out, kind, run.id)
        raise CLIError(f"no result within {limit:g}s: {outcome}") from None
    except APIConnectionError as exc:
        raise StillRunning(
            f"{describe_error(exc)}; {kind} {run.id} may still be running "
            f"(check with {_check(kind, run.id)})"
        ) from None


def print_logs(out: Output, logs: str | None, *, tail: int | None = None) -> None:
    """Logs on stderr (the last ``tail`` lines), under a heading on a terminal."""
    lines = (logs or "").rstrip("\n").splitlines()
    if not lines:
        return
    shown = lines[-tail:] if tail is not None else lines
    if len(shown) < len(lines):
        out.note(f"logs (last {len(shown)} of {len(lines)} lines):")
    elif out.err_tty:
        out.note("logs:")
    out.say("\n".join(shown))


async def follow_logs(
    client: AsyncReplicate, out: Output, kind: Kind, run_id: str, *, timeout: float | None = None
) -> Any:
    """Print a run's logs to stdout as they grow, until it is terminal; return it.

    Until the first log line, a spinner (on a terminal) says what the server last said
    of the run. Ctrl-C stops following and leaves the run alone (it is not canceled); so
    does ``timeout`` (exit status 3: the run may still be going).
    """
    resource = _resource(client, kind)
    printed = 0
    keeps_running = (
        f"{kind} {run_id} keeps running (not canceled); "
        f"cancel it with `replicate-async {kind}s cancel {run_id}`"
    )
    try:
        async with asyncio.timeout(timeout):
            with out.status(f"Waiting for {kind} {run_id}…"):
                while True:
                    run = await resource.get(run_id)
                    out.relabel(f"{kind.capitalize()} {run_id} is {run.status}, no logs yet…")
                    logs = run.logs or ""
                    if len(logs) > printed:
                        out.write(logs[printed:])
                        printed = len(logs)
                    if run.status in TERMINAL_STATUSES:
                        if printed and not logs.endswith("\n"):
                            out.write("\n")
                        return run
                    await asyncio.sleep(FOLLOW_EVERY)
    except asyncio.CancelledError:
        if not out.interrupts.count:
            raise
        absorb_cancel()
        raise Interrupted(f"Stopped following: {keeps_running}") from None
    except TimeoutError:
        raise StillRunning(
            f"stopped following after {timeout:g}s (--timeout): {keeps_running}"
        ) from None
