"""The one place where anything a command raises becomes one ``Error:`` line and an exit
status from the documented set (see :mod:`._exits`).

Click already shows its own usage errors (status 2) and :class:`~._runtime.CLIError`; this
boundary turns everything else into one of those, so no input can end in a traceback:

- a closed stdout pipe (``| head``): quiet, status 0; a full or failing stdout: one line,
  status 1 (and what Python still flushes at exit goes to ``/dev/null``);
- Ctrl-C outside a command's own handling (at a prompt, while parsing): status 130;
- a file the command could not read or write: ``Error: PATH: No such file or directory``;
- anything unexpected (a bug): ``Error: unexpected ValueError: ...`` and status 1; with
  ``--debug`` the traceback follows, with where to report it.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
from collections.abc import Sequence

import click

from ._exits import OK
from ._jq import JqError
from ._output import StdoutFailed, silence_stdout
from ._runtime import ArgumentError, CLIError, Interrupted

__all__ = ["translate", "wants_debug"]


def _is_broken_pipe(exc: BaseException) -> bool:
    if isinstance(exc, StdoutFailed):
        exc = exc.error
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno == errno.EPIPE
    )


def _os_line(exc: OSError) -> str:
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        return f"{os.fsdecode(exc.filename)}: {reason}"
    return reason


def _unexpected(exc: BaseException, debug: bool) -> CLIError:
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:199] + "…"
    kind = type(exc).__name__
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
        return CLIError(
            f"unexpected {kind}: {text} — a bug in replicate-async; please report it to "
            "its maintainers with the traceback above and the command you ran"
        )
    return CLIError(f"unexpected {kind}: {text} (a bug? rerun with --debug for details)")


def translate(exc: BaseException, debug: bool) -> BaseException:
    """What click should see instead of ``exc`` (a click exception or ``Exit``)."""
    if _is_broken_pipe(exc):
        silence_stdout()
        return click.exceptions.Exit(OK)
    if isinstance(exc, StdoutFailed):
        silence_stdout()
        return CLIError(f"cannot write the output: {exc}")
    if isinstance(exc, KeyboardInterrupt):
        return Interrupted("Interrupted.")
    if isinstance(exc, JqError):
        return ArgumentError(f"--jq: {exc}")
    if isinstance(exc, RecursionError):
        return CLIError("the value is nested too deeply to handle")
    if isinstance(exc, OSError):
        return CLIError(_os_line(exc))
    return _unexpected(exc, debug)


def wants_debug(args: Sequence[str] | None) -> bool:
    """Whether ``--debug`` was given (before the settings that hold it exist)."""
    return "--debug" in (args if args is not None else sys.argv[1:])
