"""The command line's exit statuses (documented in ``--help`` and the README)."""

from __future__ import annotations

__all__ = ["ERROR", "INTERRUPTED", "OK", "STILL_RUNNING", "USAGE"]

OK = 0
#: The API or the model failed.
ERROR = 1
#: Bad usage, found before anything was sent.
USAGE = 2
#: We stopped waiting (timeout, lost connection, Ctrl-C without a confirmed cancel, or
#: ``--keep-running``): the prediction may still be running, and its id was printed.
STILL_RUNNING = 3
#: After Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130
