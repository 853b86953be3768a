"""Ctrl-C while a command runs: the first press cleans up, the second stops waiting."""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

__all__ = ["Interrupts", "absorb_cancel", "install"]

from ._exits import INTERRUPTED


class Interrupts:
    """Ctrl-C presses while a command runs.

    The first cancels the command's task: its cleanup (e.g. canceling a prediction on the
    server) runs and says what happened. The second cancels it again: cleanup stops
    waiting and says plainly what may be left running. The third exits at once.
    """

    def __init__(self) -> None:
        self.count = 0
        self.task: asyncio.Task[Any] | None = None

    def press(self) -> None:
        """Called on SIGINT, on the event loop."""
        self.count += 1
        if self.count >= 3:
            sys.stderr.write("Aborted.\n")
            sys.stderr.flush()
            os._exit(INTERRUPTED)
        if self.task is not None and not self.task.done():
            self.task.cancel()


def install(loop: asyncio.AbstractEventLoop, interrupts: Interrupts) -> bool:
    """Route SIGINT to ``interrupts`` (not if the shell started us with it ignored)."""
    try:
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            return False
        loop.add_signal_handler(signal.SIGINT, interrupts.press)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
        return False
    return True


def absorb_cancel() -> None:
    """In cleanup after a Ctrl-C's ``CancelledError``: allow awaiting again (a further
    Ctrl-C still cancels the cleanup itself)."""
    import asyncio

    task = asyncio.current_task()
    if task is not None and task.cancelling():
        task.uncancel()
