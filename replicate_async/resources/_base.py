"""What every resource shares: a reference to the request path, and prediction creation.

Resources only do typed operations. What a create needs from the layers above (turning
files in an input into URLs) is handed in as an :data:`InputPreparer` by the client.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from .._checks import body as check_body
from .._checks import numbers as check_numbers
from .._checks.body import PLAIN_TYPES
from .._core.http import HTTPCore, Response
from .._core.options import RequestOptionsDict, call_options
from .._core.response import decode
from .._literals import WebhookEvent

T = TypeVar("T")

#: Replaces the files in a model input (paths, bytes, file objects) by URLs, before a create.
InputPreparer = Callable[[Any], Awaitable[Any]]

#: Extra seconds on the read timeout above a ``Prefer: wait=N`` hold.
WAIT_MARGIN = 5.0


class Resource:
    """A group of endpoints. Holds the client's :class:`HTTPCore` and, for the ones that
    create runs, the input preparer (files to URLs); nothing else."""

    __slots__ = ("_http", "_prepare")

    def __init__(self, http: HTTPCore, prepare: InputPreparer | None = None) -> None:
        self._http = http
        self._prepare = prepare

    async def _prepared(self, value: Any) -> Any:
        """``value`` with its files replaced by URLs (unchanged without a preparer)."""
        return value if self._prepare is None else await self._prepare(value)

    def _via(self, options: RequestOptionsDict) -> HTTPCore:
        """The request path for one call: the client's, or a view with the call's option
        keywords on top (converted and checked here once; every request of the call uses it)."""
        return self._http.with_options(call_options(options)) if options else self._http

    async def _get(self, path: str, cls: type[T], options: RequestOptionsDict) -> T:
        response = await self._via(options).request("GET", path)
        return decode(response, cls)

    async def _send_json(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any],
        cls: type[T],
        options: RequestOptionsDict,
    ) -> T:
        response = await self._via(options).request(
            method,
            path,
            content=check_body.json_body(body),
            headers={"Content-Type": "application/json"},
        )
        return decode(response, cls)


def create_request(
    http: HTTPCore,
    path: str,
    body: dict[str, Any],
    *,
    webhook: str | None,
    webhook_events_filter: Iterable[WebhookEvent] | None,
    stream: bool | None,
    wait: bool | int | None,
    cancel_after: float | timedelta | str | None,
    prepare: InputPreparer | None = None,
) -> Coroutine[Any, Any, Response]:
    """The ``POST`` to one of the three prediction-create endpoints, to await (its
    response decodes to a :class:`~replicate_async.models.Prediction`).

    Validates everything at once, before anything is sent; sends ``Prefer: wait[=N]`` and
    raises the read timeout above the hold; never retries unless the server provably did
    not create it. Not a coroutine itself: a create of plain inputs is the request's own
    coroutine, one layer below the resource method.
    """
    if webhook is not None:
        body["webhook"] = check_body.webhook_url(webhook)
    events = check_body.events_filter(webhook_events_filter, webhook=webhook)
    if events is not None:
        body["webhook_events_filter"] = events
    if stream is not None:
        if not isinstance(stream, bool):
            raise TypeError("stream must be a bool")
        body["stream"] = stream
    prefer, hold = check_numbers.prefer_wait(wait)
    headers = {"Content-Type": "application/json"}
    if prefer is not None:
        headers["Prefer"] = prefer
    cancel = check_numbers.cancel_after_header(cancel_after)
    if cancel is not None:
        headers["Cancel-After"] = cancel
    read_timeout = None
    if hold is not None:
        read_timeout = max(http.config.timeouts.read, hold + WAIT_MARGIN)
    if prepare is not None and not _flat_plain(body["input"]):
        return _create_with_files(http, path, body, headers, read_timeout, prepare)
    return _post_create(http, path, body, headers, read_timeout)


def _post_create(
    http: HTTPCore,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    read_timeout: float | None,
) -> Coroutine[Any, Any, Response]:
    return http.request(
        "POST",
        path,
        content=check_body.json_body(body),
        headers=headers,
        read_timeout=read_timeout,
        held=read_timeout is not None,
    )


async def _create_with_files(
    http: HTTPCore,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    read_timeout: float | None,
    prepare: InputPreparer,
) -> Response:
    """A create whose input holds files: uploaded (once every argument has been checked),
    then the create is sent with their URLs."""
    body["input"] = await prepare(body["input"])
    return await _post_create(http, path, body, headers, read_timeout)


def _flat_plain(value: Mapping[str, Any]) -> bool:
    """Whether every value of an input is text, a number, a bool or ``None`` (most inputs):
    then it holds no file, and the preparer would hand it back as it is."""
    return PLAIN_TYPES.issuperset(map(type, value.values()))
