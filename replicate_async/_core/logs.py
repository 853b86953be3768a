"""The ``replicate_async`` logger, and the ``REPLICATE_ASYNC_LOG`` switch.

The SDK logs to the ``replicate_async`` logger and, like every library, adds no handler of
its own: an application configures logging as it likes. ``REPLICATE_ASYNC_LOG=info`` (one
line per HTTP response) or ``=debug`` (also each request, its headers and each retry) is
the opt-in shortcut: the first client made with it set gives the logger that level and one
stderr handler. Whatever is logged, the API token is not: headers are logged with
``Authorization`` replaced, and the handler's filter blanks anything shaped like a token
(``r8_...``, ``Bearer ...``) that a message or an argument might still carry.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ENV_VAR", "RedactTokens", "log_from_environment", "log_request", "log_response"]

logger: Final = logging.getLogger("replicate_async")

#: The environment variable read by :func:`log_from_environment`.
ENV_VAR: Final = "REPLICATE_ASYNC_LOG"
_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO}
_TOKEN: Final = re.compile(r"(Bearer\s+)\S+|r8_[A-Za-z0-9_-]+", re.IGNORECASE)
_REDACTED: Final = "<redacted>"


def redact(text: str) -> str:
    """``text`` with anything shaped like an API token replaced."""
    return _TOKEN.sub(lambda m: (m.group(1) or "") + _REDACTED, text)


class RedactTokens(logging.Filter):
    """A logging filter that blanks token-shaped text in each record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def log_from_environment() -> None:
    """Honour ``REPLICATE_ASYNC_LOG`` (``debug`` or ``info``; anything else: nothing).

    Sets the ``replicate_async`` logger's level and adds one stderr handler (with
    :class:`RedactTokens`) to it, once per process. Called by the client's constructor.
    """
    level = _LEVELS.get(os.environ.get(ENV_VAR, "").strip().lower())
    if level is None:
        return
    logger.setLevel(level)
    if any(isinstance(h, _EnvHandler) for h in logger.handlers):
        return
    handler = _EnvHandler()
    handler.setFormatter(logging.Formatter("[%(name)s] %(levelname)s %(message)s"))
    handler.addFilter(RedactTokens())
    logger.addHandler(handler)


class _EnvHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``REPLICATE_ASYNC_LOG`` adds (told apart from the application's)."""


def log_request(method: str, url: str, headers: Mapping[str, str], attempt: int) -> None:
    """Debug: a request about to go out (query string dropped, token replaced)."""
    shown = {k: (_REDACTED if k.lower() == "authorization" else v) for k, v in headers.items()}
    logger.debug("request %s %s attempt=%d headers=%s", method, url, attempt, shown)


def log_response(method: str, url: str, status: int, elapsed: float, request_id: Any) -> None:
    """Info: one line per HTTP response."""
    rid = f" request_id={request_id}" if request_id else ""
    logger.info("HTTP %s %s -> %d in %.3fs%s", method, url, status, elapsed, rid)
