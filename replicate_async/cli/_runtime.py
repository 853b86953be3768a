"""How a command runs: settings from the root group, one client per command, exit codes,
Ctrl-C, and SDK errors turned into one ``Error:`` line.

Every API command is an ``async def`` taking ``(client, out, **params)``; :func:`with_client`
turns it into a click callback that runs it on a new event loop with a fresh
:class:`~replicate_async.AsyncReplicate`. Only click is imported at module level: the SDK
(and so aiohttp) and rich load when a command actually runs.

Exit status: :data:`OK` 0, :data:`ERROR` 1 (the API or the model failed), :data:`USAGE` 2,
:data:`STILL_RUNNING` 3 (we stopped waiting; the prediction may still be running and its
id was printed), :data:`INTERRUPTED` 130.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, overload

import click

from ._exits import ERROR, INTERRUPTED, OK, STILL_RUNNING, USAGE
from ._signals import Interrupts, install

if TYPE_CHECKING:
    from .. import AsyncReplicate
    from ._output import Output

__all__ = [
    "ERROR",
    "INTERRUPTED",
    "OK",
    "STILL_RUNNING",
    "USAGE",
    "ArgumentError",
    "CLIError",
    "Interrupted",
    "Settings",
    "StillRunning",
    "bounded",
    "run_coroutine",
    "settings",
    "with_client",
]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Settings:
    """Global options, set by the root group (``--json``/``--limit`` also on commands)."""

    base_url: str | None = None
    json: bool = False
    jq: str | None = None
    limit: int | None = None
    timeout: float | None = None
    #: 0 quiet, 1 ``--verbose`` (requests and statuses), 2 ``--debug`` (headers, bodies).
    verbosity: int = 0
    #: True when ``--base-url`` was typed (not taken from ``REPLICATE_BASE_URL``).
    base_url_from_command_line: bool = False

    def output(self) -> Output:
        """Where this command prints."""
        from ._output import Output

        return Output(json=self.json, jq=self.jq, limit=self.limit)


def settings() -> Settings:
    """The current command's settings."""
    return click.get_current_context().ensure_object(Settings)


class CLIError(click.ClickException):
    """A one-line ``Error: ...`` on stderr (red on a terminal) and exit status 1."""

    exit_code = ERROR

    def show(self, file: Any = None) -> None:
        """Print ``Error: message`` (click drops the colour when stderr is not a terminal)."""
        click.echo(
            f"{click.style('Error:', fg='red', bold=True)} {self.format_message()}", err=True
        )


class ArgumentError(CLIError):
    """An argument the SDK rejected before sending anything: exit status 2."""

    exit_code = USAGE


class StillRunning(CLIError):
    """We stopped waiting; the message names the prediction that may still run: status 3."""

    exit_code = STILL_RUNNING


class Interrupted(CLIError):
    """Ctrl-C, after whatever cleanup it started: status 130, the message as it is."""

    exit_code = INTERRUPTED

    def show(self, file: Any = None) -> None:
        """Print the message without the ``Error:`` prefix."""
        click.echo(self.format_message(), err=True)


def _outcome(exc: BaseException) -> click.ClickException | None:
    """The command's own ending (``Interrupted: prediction abc was canceled``...) that a
    cancel during teardown (closing the client) replaced, if any."""
    seen: set[int] = set()
    current = exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, click.ClickException):
            return current
        current = current.__context__
    return None


def run_coroutine(
    main: Coroutine[Any, Any, T],
    *,
    interrupts: Interrupts | None = None,
    interrupted: str = "Interrupted.",
) -> T:
    """Run ``main`` on a new event loop with Ctrl-C routed to ``interrupts``.

    A command cancelled by Ctrl-C that does not say otherwise ends with ``interrupted``
    and status 130 (anything else it raises is left to the error boundary).
    """
    import asyncio

    presses = interrupts or Interrupts()

    async def guarded() -> T:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(main)
        presses.task = task
        installed = install(loop, presses)
        try:
            return await task
        except asyncio.CancelledError as exc:
            said = _outcome(exc)
            if said is not None:  # a later Ctrl-C cut the teardown after the command ended
                raise said from None
            if presses.count:
                raise Interrupted(interrupted) from None
            raise
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
                if presses.count:  # ending on Ctrl-C already: a late press must not cut that
                    signal.signal(signal.SIGINT, signal.SIG_IGN)

    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:  # SIGINT before our handler was installed
        raise Interrupted(interrupted) from None


def _retry_notice(out: Output) -> Callable[[Any], None]:
    """An ``on_retry`` hook: rate limiting (429) that persists is said, not silent. On a
    terminal the spinner says it; elsewhere one line on stderr, once."""
    said = False

    def on_retry(event: Any) -> None:
        nonlocal said
        if event.reason != "429" or event.attempt < 2:
            return
        if out.err_tty:
            out.relabel(f"Rate limited by the API (429): retrying in {event.wait:.0f}s…")
        elif not said:
            said = True
            out.say(
                "the API keeps answering 429 (rate limited): still retrying "
                f"{event.method} {event.url} (Ctrl-C stops; --timeout bounds it)"
            )

    return on_retry


@contextlib.asynccontextmanager
async def open_client(config: Settings, out: Output) -> AsyncIterator[AsyncReplicate]:
    """A client for these settings (the token comes from ``REPLICATE_API_TOKEN``); with
    ``--verbose``/``--debug`` its session reports each HTTP exchange on stderr."""
    from .. import AsyncReplicate
    from .._core.hooks import Hooks

    session = None
    if config.verbosity:
        from ._trace import traced_session

        session = traced_session(out, config.verbosity, os.environ.get("REPLICATE_API_TOKEN"))
    hooks = Hooks(on_retry=_retry_notice(out))
    try:
        async with AsyncReplicate(base_url=config.base_url, session=session, hooks=hooks) as client:
            yield client
    finally:
        if session is not None:
            await session.close()


async def _guard_errors(work: Awaitable[None], config: Settings) -> None:
    """Await ``work``, turning SDK errors into :class:`CLIError` with a helpful line."""
    from ..exceptions import InvalidArgumentError, ReplicateError
    from ._errors import describe_error, exit_status

    try:
        await work
    except (InvalidArgumentError, TypeError) as exc:  # the SDK's checks, before any request
        raise ArgumentError(describe_error(exc, config.base_url)) from None
    except ReplicateError as exc:
        error = StillRunning if exit_status(exc) == STILL_RUNNING else CLIError
        raise error(describe_error(exc, config.base_url)) from None


Command = Callable[Concatenate["AsyncReplicate", "Output", P], Awaitable[None]]


@overload
def with_client(fn: Command[P]) -> Callable[P, None]: ...
@overload
def with_client(*, own_timeout: bool) -> Callable[[Command[P]], Callable[P, None]]: ...


def with_client(fn: Command[P] | None = None, *, own_timeout: bool = False) -> Any:
    """Make ``async def cmd(client, out, **params)`` a click callback (keeps its name/doc).

    The global ``--timeout`` bounds the whole command, unless ``own_timeout`` (the command
    reads ``out.timeout`` itself, e.g. to cancel a prediction when it passes). On a
    terminal, a spinner appears when an answer is slow to come.
    """

    def decorate(fn: Command[P]) -> Callable[P, None]:
        @functools.wraps(fn)
        def callback(*args: P.args, **kwargs: P.kwargs) -> None:
            config = settings()
            out = config.output()
            out.timeout = config.timeout

            async def main() -> None:
                async with open_client(config, out) as client:
                    work = fn(client, out, *args, **kwargs)
                    if not own_timeout:
                        work = bounded(work, out, client.base_url)
                    await _guard_errors(work, config)

            run_coroutine(main(), interrupts=out.interrupts, interrupted=out.interrupted)

        return callback

    return decorate(fn) if fn is not None else decorate


async def bounded(work: Awaitable[T], out: Output, base_url: str) -> T:
    """``work`` under the global ``--timeout``, with a spinner if it is slow."""
    import asyncio

    host = base_url.split("//", 1)[-1].split("/", 1)[0]
    try:
        async with asyncio.timeout(out.timeout):
            with out.patience(f"Waiting for {host}…"):
                return await work
    except TimeoutError:
        raise CLIError(f"no answer from {host} within {out.timeout:g}s (--timeout)") from None
