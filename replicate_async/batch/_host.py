"""What a batch needs besides its client's runner: its settings, where completions come
from by webhook, and who a worker is (its id, and whether the process behind an id on
this machine is gone)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from ..models import Prediction

__all__ = ["CompletionWaiter", "WorkerConfig", "dead_here", "new_worker"]

_HOST = socket.gethostname()


class CompletionWaiter(Protocol):
    """Where a prediction's completion comes from by webhook instead of by polling (a
    :class:`~replicate_async.WebhookWaiter`, started; give it ``bus=fleet.bus`` to
    share deliveries across a fleet)."""

    @property
    def url(self) -> str:
        """The webhook URL Replicate delivers to."""
        ...

    async def wait(self, prediction_id: str, *, timeout: float | None = ...) -> Prediction:
        """The prediction as its terminal delivery brought it (``TimeoutError`` after
        ``timeout`` seconds)."""
        ...


@attrs.frozen
class WorkerConfig:
    """A batch's settings, as its worker uses them (see :class:`Batch`)."""

    ref: str | None
    key: Callable[[Mapping[str, Any]], str]
    concurrency: int
    wait: bool | int | None
    webhook: str | None
    out_dir: Path | None
    lease: float
    settle: float
    max_attempts: int
    poll: float
    waiter: CompletionWaiter | None = None
    safety_poll: float = 60.0


def new_worker() -> str:
    """A worker id: host, process and a random part (``host:pid:hex``)."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def dead_here(owner: str) -> bool:
    """Whether ``owner`` was a process of this machine that no longer exists."""
    host, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    if host != _HOST or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False
