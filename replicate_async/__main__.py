"""``replicate-async`` / ``python -m replicate_async``: the command line.

The command line needs the ``cli`` extra (click and rich); without it, :func:`main` prints a
one-line hint and exits with status 2. A closed stdout pipe (``... | head -1``) ends it
quietly with status 0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

HINT = 'replicate-async: the command line needs click and rich: pip install "replicate-async[cli]"'


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    if not _installed("click", "rich"):
        print(HINT, file=sys.stderr)
        return 2
    from .cli import cli

    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="replicate-async")
    except SystemExit as exc:  # click always exits, with the command's status
        return _exit_status(exc.code)
    except BrokenPipeError:  # the reader of our stdout left (`| head`): not an error
        _silence_stdout()
        return 0


def _installed(*names: str) -> bool:
    """Whether the ``cli`` extra is installed, without importing it (rich is slow to load)."""
    from importlib.util import find_spec

    for name in names:
        if name in sys.modules:
            if sys.modules[name] is None:  # blocked, as a test does to mimic its absence
                return False
            continue
        try:
            if find_spec(name) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def _silence_stdout() -> None:
    import contextlib
    import os

    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
