"""The ``replicate-async`` command line (needs the ``cli`` extra: click and rich).

Every command is a thin, declarative layer over :class:`~replicate_async.AsyncReplicate`:
``_runtime`` runs a coroutine with a client and turns SDK errors into one ``Error:`` line,
``_output`` prints tables or JSON lines, ``_formats`` says which columns each object shows.
"""

from ._app import cli

__all__ = ["cli"]
