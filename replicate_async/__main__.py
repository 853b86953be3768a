"""``replicate-async`` / ``python -m replicate_async``: the command line.

The command line needs the ``cli`` extra (click and rich); without it, :func:`main` prints a
one-line hint and exits with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

HINT = 'replicate-async: the command line needs click and rich: pip install "replicate-async[cli]"'


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError:
        print(HINT, file=sys.stderr)
        return 2
    from .cli import cli

    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="replicate-async")
    except SystemExit as exc:  # click always exits, with the command's status
        return _exit_status(exc.code)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
