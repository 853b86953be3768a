"""What every resource shares: a reference to the request path, and prediction creation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from .. import _validate as check
from .._config import PollPolicy
from .._converter import structure
from .._files import prepare_input
from .._http import HTTPCore, Response, decode_model
from .._run import drive
from ..models import Prediction, Training

T = TypeVar("T")
R = TypeVar("R", Prediction, Training)

#: Extra seconds on the read timeout above a ``Prefer: wait=N`` hold.
WAIT_MARGIN = 5.0


class Resource:
    """A group of endpoints. Holds the client's :class:`HTTPCore`; nothing else."""

    __slots__ = ("_http",)

    def __init__(self, http: HTTPCore) -> None:
        self._http = http

    async def _get(self, path: str, cls: type[T], **params: str) -> T:
        response = await self._http.request("GET", path, params=params or None)
        return _decode(response, cls)

    async def _send_json(self, method: str, path: str, body: Mapping[str, Any], cls: type[T]) -> T:
        response = await self._http.request(
            method,
            path,
            content=check.json_body(body),
            headers={"Content-Type": "application/json"},
        )
        return _decode(response, cls)


def _decode(response: Response, cls: type[T]) -> T:
    result: T = decode_model(response, lambda data: structure(data, cls))
    return result


async def create_prediction(
    http: HTTPCore,
    path: str,
    body: dict[str, Any],
    *,
    webhook: str | None,
    webhook_events_filter: Iterable[str] | None,
    stream: bool | None,
    wait: bool | int | None,
    cancel_after: float | timedelta | str | None,
) -> Prediction:
    """``POST`` to one of the three prediction-create endpoints.

    Validates everything before sending; sends ``Prefer: wait[=N]`` and raises the read
    timeout above the hold; never retries unless the server provably did not create it.
    """
    if webhook is not None:
        body["webhook"] = check.webhook_url(webhook)
    events = check.events_filter(webhook_events_filter, webhook=webhook)
    if events is not None:
        body["webhook_events_filter"] = events
    if stream is not None:
        if not isinstance(stream, bool):
            raise TypeError("stream must be a bool")
        body["stream"] = stream
    prefer, hold = check.prefer_wait(wait)
    headers = {"Content-Type": "application/json"}
    if prefer is not None:
        headers["Prefer"] = prefer
    cancel = check.cancel_after_header(cancel_after)
    if cancel is not None:
        headers["Cancel-After"] = cancel
    read_timeout = None
    if hold is not None:
        read_timeout = max(http.config.timeouts.read, hold + WAIT_MARGIN)
    # Files in the input may be uploaded: only once every argument has been checked.
    body["input"] = await prepare_input(http, body["input"])
    response = await http.request(
        "POST", path, content=check.json_body(body), headers=headers, read_timeout=read_timeout
    )
    return _decode(response, Prediction)


async def wait_for(
    http: HTTPCore,
    run: R | str,
    cls: type[R],
    *,
    get: Callable[[str], Awaitable[R]],
    cancel: Callable[[str], Awaitable[R]],
    timeout: float | None,
    poll: PollPolicy | None,
    cancel_on_abandon: bool,
) -> R:
    """The shared body of ``predictions.wait`` and ``trainings.wait``: check the arguments,
    fetch the run if given by id, then poll it to a terminal status under one deadline."""
    timeout = check.seconds(timeout, "timeout")
    check.poll_policy(poll)
    if not isinstance(run, cls):
        run = await get(check.require_id(run, cls.__name__.lower()))
    return await drive(
        current=run,
        fetch=get,
        cancel=cancel,
        timeout=timeout,
        poll=poll or http.config.poll,
        cancel_on_abandon=cancel_on_abandon,
    )
