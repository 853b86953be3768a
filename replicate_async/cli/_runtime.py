"""How a command runs: settings from the root group, one client per command, clean errors.

Every API command is an ``async def`` taking ``(client, out, **params)``; :func:`with_client`
turns it into a click callback that runs it under :func:`asyncio.run` with a fresh
:class:`~replicate_async.AsyncReplicate`. ``asyncio.run`` cancels the running task on
Ctrl-C, so an interrupted ``run`` cancels its prediction on the server before exiting.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from http import HTTPStatus
from typing import Any, Concatenate, ParamSpec, TypeVar

import attrs
import click

from .. import AsyncReplicate
from ..exceptions import (
    APIStatusError,
    MissingTokenError,
    RateLimitError,
    ReplicateError,
    UnprocessableEntityError,
)
from ._output import Output

__all__ = [
    "ArgumentError",
    "CLIError",
    "Settings",
    "describe_error",
    "run_coroutine",
    "with_client",
]

P = ParamSpec("P")
T = TypeVar("T")

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


@attrs.define
class Settings:
    """Global options, set by the root group (and ``--json``/``--limit`` on any command)."""

    base_url: str | None = None
    json: bool = False
    limit: int | None = None
    #: True when ``--base-url`` was typed (not taken from ``REPLICATE_BASE_URL``).
    base_url_from_command_line: bool = False

    def client(self) -> AsyncReplicate:
        """A client for these settings; the token comes from ``REPLICATE_API_TOKEN``."""
        return AsyncReplicate(base_url=self.base_url)


class CLIError(click.ClickException):
    """A one-line ``Error: ...`` on stderr and exit status 1."""

    exit_code = 1


class ArgumentError(CLIError):
    """An argument the SDK rejected before sending anything: exit status 2."""

    exit_code = 2


def describe_error(exc: BaseException) -> str:
    """One line for an error: ``404 Not Found: The requested resource could not be found.``"""
    if isinstance(exc, MissingTokenError):
        return "no API token: set REPLICATE_API_TOKEN (find it at replicate.com/account)"
    if isinstance(exc, APIStatusError):
        reason = exc.title or _reason(exc.status)
        detail = exc.detail or (exc.message if exc.message != reason else "")
        text = f"{exc.status} {reason}: {detail}" if detail else f"{exc.status} {reason}"
        if isinstance(exc, UnprocessableEntityError) and exc.invalid_fields:
            fields = "; ".join(
                f"{f.get('field', '?')}: {f.get('description', '')}" for f in exc.invalid_fields
            )
            text = f"{text} ({fields})"
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            text = f"{text} (retry after {exc.retry_after:g}s)"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def run_coroutine(
    main: Coroutine[Any, Any, T], *, interrupted: Callable[[], str] = lambda: "Interrupted."
) -> T:
    """Run ``main`` on a new event loop, turning SDK errors into :class:`CLIError`.

    Ctrl-C cancels ``main`` (and so whatever it awaits, e.g. a run, which cancels its
    prediction on the server), then exits with status 130 after printing ``interrupted()``.
    """
    try:
        return asyncio.run(main)
    except ReplicateError as exc:
        raise CLIError(describe_error(exc)) from None
    except (ValueError, TypeError) as exc:  # the SDK's argument checks, before any request
        raise ArgumentError(describe_error(exc)) from None
    except KeyboardInterrupt:
        click.echo(interrupted(), err=True)
        raise click.exceptions.Exit(INTERRUPTED) from None


async def _interruptible(work: Awaitable[None], out: Output) -> None:
    """Run ``work``; on cancellation (Ctrl-C) say so at once, then let it clean up."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        if out.canceling:
            out.err.print(f"[yellow]{out.canceling}[/yellow]")
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved: an error while cleaning up is not the story here
        raise
    task.result()


def with_client(
    fn: Callable[Concatenate[AsyncReplicate, Output, P], Awaitable[None]],
) -> Callable[P, None]:
    """Make ``async def cmd(client, out, **params)`` a click callback (keeps its name/doc)."""

    @functools.wraps(fn)
    def callback(*args: P.args, **kwargs: P.kwargs) -> None:
        ctx = click.get_current_context()
        settings = ctx.find_object(Settings) or Settings()
        out = Output(json=settings.json, limit=settings.limit)

        async def main() -> None:
            async with settings.client() as client:
                await _interruptible(fn(client, out, *args, **kwargs), out)

        run_coroutine(main(), interrupted=lambda: out.interrupted)

    return callback
