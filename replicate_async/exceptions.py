"""The exceptions replicate_async raises, as one tree.

Every error the SDK raises derives from :class:`ReplicateError`; no aiohttp, asyncio or
OS exception escapes unwrapped (the original is always chained as ``__cause__``)::

    ReplicateError
    ├── APIError                      something went wrong talking to the API
    │   ├── APIConnectionError        no usable HTTP response (DNS, refused, reset, truncated)
    │   │   ├── APITimeoutError       a connect/read/total timeout fired
    │   │   │   └── PoolTimeoutError  no connection slot freed up within ``Timeouts.pool``
    │   │   └── RequestMayHaveSucceededError
    │   │                             a create was sent but the answer was lost; it may exist
    │   ├── APIResponseValidationError
    │   │                             a 2xx body that is not JSON or not the documented shape
    │   └── APIStatusError            the API answered with a 4xx/5xx status
    │       ├── BadRequestError               400
    │       ├── AuthenticationError           401
    │       ├── PaymentRequiredError          402 (out of credit)
    │       ├── PermissionDeniedError         403
    │       ├── NotFoundError                 404
    │       ├── ConflictError                 409
    │       ├── PayloadTooLargeError          413
    │       ├── UnprocessableEntityError      422 (``invalid_fields``)
    │       ├── RateLimitError                429 (``retry_after``)
    │       └── InternalServerError           5xx
    ├── PaginationError               a ``next`` link that loops or leaves the list's own path
    ├── StreamError                   an SSE stream ended with an ``error`` event or broke
    ├── WebhookVerificationError      a webhook delivery failed signature checks
    ├── ClientClosedError             the client was used after ``aclose()``
    ├── RunAbandonedError             a run ended by an error foreign to the SDK (named, canceled)
    ├── InvalidArgumentError          a bad argument value (also a ``ValueError``); nothing sent
    ├── DataURLError                  a malformed ``data:`` URL (RFC 2397) was read
    │   └── InputValidationError      a model input breaks the model's schema (every problem)
    ├── SchemaError                   a model's schema cannot be used (too complex, malformed)
    ├── MissingTokenError             a request needs a token and none was configured
    └── PredictionError               a prediction/training ended without succeeding
        ├── ModelError                status ``failed`` (carries the prediction)
        ├── PredictionCanceledError   status ``canceled``
        ├── PredictionAbortedError    status ``aborted`` (never started before its deadline)
        └── PredictionTimeoutError    our own deadline passed (the prediction was canceled)

Argument errors are raised before any request is sent: a bad value (``owner/name``
with a ``..`` segment, ``wait=0``, a NaN in an input...) raises :class:`InvalidArgumentError`
(a :class:`ValueError` too), naming the argument and what was wrong; a value of the
wrong type raises :class:`TypeError` naming the argument.

Every error that ends a run after its create may have reached the server names the run
(``.prediction``, ``.prediction_id``), whatever ``run``, ``predictions.run``, ``wait``,
``stream``, ``stream_output``, ``run_many`` or a ``use()`` function raised (an API error
while polling too), and the run was canceled on the server unless the caller opted out. A
foreign error (a bug, a failing ``on_created``) becomes a :class:`RunAbandonedError` naming
the run, chained to it. Nothing is named only when nothing was created or the create's
answer never came (:class:`RequestMayHaveSucceededError`; one answering later is canceled).
"""

from __future__ import annotations

import dataclasses
import reprlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

if TYPE_CHECKING:
    from .models import Prediction, Training

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "DataURLError",
    "InputProblem",
    "InputValidationError",
    "InternalServerError",
    "InvalidArgumentError",
    "MissingTokenError",
    "ModelError",
    "NotFoundError",
    "PaginationError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PoolTimeoutError",
    "PredictionAbortedError",
    "PredictionCanceledError",
    "PredictionError",
    "PredictionTimeoutError",
    "RateLimitError",
    "ReplicateError",
    "RequestMayHaveSucceededError",
    "RequestMayHaveSucceededTimeoutError",
    "RunAbandonedError",
    "SchemaError",
    "StreamError",
    "UnprocessableEntityError",
    "WebhookVerificationError",
]

#: Response headers that identify a request, in order of preference. Replicate's API sits
#: behind Cloudflare: its recorded responses carry ``CF-Ray`` (the id support can trace)
#: and no ``X-Request-Id``; the others are read first should it (or a gateway) send them.
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "cf-ray")


def request_id_of(headers: Mapping[str, str]) -> str | None:
    """The request id a response carries (``X-Request-Id``, ``Request-Id`` or ``CF-Ray``,
    case-insensitively), or ``None``."""
    lookup = headers if hasattr(headers, "getone") else CIMultiDict(headers)
    for name in REQUEST_ID_HEADERS:
        value = lookup.get(name)
        if value:
            return str(value)
    return None


class ReplicateError(Exception):
    """Base class of every exception raised by replicate_async.

    ``prediction`` is the prediction (or training) this error ended, as last seen, when it
    ended a run whose create had answered (see the module's notes); else ``None``.
    """

    prediction: Prediction | Training | None = None

    @property
    def prediction_id(self) -> str | None:
        """The id of the run this error ended (``None``: no run was named)."""
        return self.prediction.id if self.prediction is not None else None


class ClientClosedError(ReplicateError, RuntimeError):
    """The client was used after :meth:`AsyncReplicate.aclose`."""


class RunAbandonedError(ReplicateError):
    """A run was ended by an error that is not the SDK's own (a bug, a failing
    ``on_created`` callback...): ``prediction`` names the run, which was canceled on the
    server (unless the caller opted out), and ``__cause__`` is the original error."""

    def __init__(self, message: str, prediction: Prediction | Training) -> None:
        super().__init__(message)
        self.prediction = prediction


class InvalidArgumentError(ReplicateError, ValueError):
    """An argument has a bad value; raised before any request is sent.

    The message names the argument and what was wrong with it. It is a
    :class:`ValueError` too, so ``except ValueError`` keeps working.
    """


@dataclasses.dataclass(frozen=True, slots=True)
class InputProblem:
    """One thing wrong with a model input, as the API's 422 ``invalid_fields`` says it.

    ``name`` is the input concerned (``"prompt"``); ``field`` the API's path to where the
    rule failed (``"input"`` for a missing input, ``"input.seed"``, ``"input.images.0"``);
    ``type`` the rule (``required``, ``invalid_type``, ``enum``, ``number_lte``, ``format``
    ...); ``description`` the API's sentence; ``value`` the offending value (``None`` when
    missing).
    """

    name: str
    type: str
    description: str
    field: str
    value: Any = dataclasses.field(default=None, compare=False)

    def to_json(self) -> dict[str, str]:
        """The ``invalid_fields`` entry of a 422 body."""
        return {"type": self.type, "field": self.field, "description": self.description}

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        quiet = self.type in ("required", "additional_property_not_allowed")
        return where + self.description + ("" if quiet else f" (got {_short(self.value)})")


def _short(value: Any) -> str:
    """At most 60 characters of ``repr(value)``, in bounded time and depth (a value nested
    2,000 lists deep, or an int of 5,000 digits, is an input like any other)."""
    try:
        return _REPR.repr(value)[:60]
    except (ValueError, RecursionError):
        return f"<{type(value).__name__}>"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 60, 60, 40


class InputValidationError(InvalidArgumentError):
    """A model input breaks the model's schema; nothing was sent.

    ``problems`` lists every :class:`InputProblem` (field, rule, value) the check found,
    in the words the API's 422 would use (each description at most a few hundred
    characters: an enum of 20,000 choices names the first few); ``invalid_fields`` is the
    same as the API's 422 body entries (as on :class:`UnprocessableEntityError`). A check
    stops collecting after a hundred problems: ``omitted`` counts the ones left out. The
    message lists the first :attr:`SHOWN` problems and says how many more there are.
    """

    #: Problems the message lists one per line; the rest are counted ("and 12 more").
    SHOWN = 20

    def __init__(self, message: str, problems: Sequence[InputProblem], *, omitted: int = 0) -> None:
        self.problems: list[InputProblem] = list(problems)
        self.omitted = omitted
        self.invalid_fields: list[dict[str, str]] = [p.to_json() for p in self.problems]
        lines = "".join(f"\n- {problem}" for problem in self.problems[: self.SHOWN])
        more = len(self.problems) - self.SHOWN + omitted
        if more > 0:
            lines += f"\n- and {more} more"
        super().__init__(message + lines)


class SchemaError(ReplicateError, ValueError):
    """A model's OpenAPI schema cannot be used as asked: it is beyond the SDK's budgets for
    walking one (more than ``MAX_NODES`` ``$ref``/``allOf`` nodes, or nesting deeper than
    ``MAX_DEPTH``: :mod:`replicate_async._checks.walk`).

    A model's schema is written by whoever pushed the model, so the SDK treats it as
    untrusted: checks and shaping never hang or fail on it. Input checks on such a schema
    are skipped (with one warning, and :attr:`ModelSchema.input_check_skipped` says why:
    the API still checks the input), outputs are returned as the API gave them, and
    ``codegen`` types what it cannot walk as ``Any``; only the schema helpers that must
    answer (``flatten``) raise this. ``reason`` says which budget ran out.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"the model's schema cannot be used: {reason}")
        self.reason = reason


class DataURLError(ReplicateError, ValueError):
    """A ``data:`` URL (a model output, or one passed in) is malformed: no comma, or
    ``;base64`` data that is not base64 (RFC 2397)."""


class MissingTokenError(ReplicateError, ValueError):
    """No API token: pass ``api_token=`` or set ``REPLICATE_API_TOKEN``."""


class PaginationError(ReplicateError):
    """A pagination ``next`` link was unsafe (foreign host) or looped."""


class StreamError(ReplicateError):
    """A server-sent event stream reported an ``error`` event or could not be resumed."""

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.detail = detail


class WebhookVerificationError(ReplicateError):
    """A webhook delivery is missing headers, is stale, or its signature does not match."""


class APIError(ReplicateError):
    """A request to the API failed. ``method`` and ``url`` name the request (never the token)."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        return f"{self.message}{where}"


class APIConnectionError(APIError):
    """No usable HTTP response arrived: the connection failed, was reset, or was cut short.

    ``connect_failed`` is true when the connection could not even be opened, so the request
    provably never reached the server.
    """

    def __init__(
        self, message: str, *, method: str = "", url: str = "", connect_failed: bool = False
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.connect_failed = connect_failed


class APITimeoutError(APIConnectionError):
    """A connect, read or total timeout fired before the response was complete."""


class PoolTimeoutError(APITimeoutError):
    """No connection slot of the request's budget was freed for ``Timeouts.pool`` seconds
    while it waited (every connection stayed busy: a stall, not a long queue). Nothing was
    sent (``connect_failed`` is true) and it is not retried; raise ``max_connections``,
    hold fewer connections open at once, or set a longer ``Timeouts.pool``."""


class RequestMayHaveSucceededError(APIConnectionError):
    """A request that creates something was sent, but its response was lost.

    The server may have created the prediction or training anyway, so it is not retried
    automatically (that could bill twice). List recent predictions to find it.
    """


class RequestMayHaveSucceededTimeoutError(RequestMayHaveSucceededError, APITimeoutError):
    """A create that timed out after it was sent: both a :class:`RequestMayHaveSucceededError`
    (it may exist on the server) and an :class:`APITimeoutError` (catch either)."""


class APIResponseValidationError(APIError):
    """A successful response whose body is not valid JSON or not of the documented shape."""

    def __init__(
        self, message: str, *, method: str = "", url: str = "", status: int = 0, body: Any = None
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status
        self.body = body


class APIStatusError(APIError):
    """The API answered with an error status.

    Attributes mirror the problem-details body (RFC 7807) where present; anything missing
    falls back to the HTTP response (``status``) or ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int,
        headers: Mapping[str, str],
        body: Any,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status = status
        #: The response headers, looked up case-insensitively (``err.headers["retry-after"]``).
        self.headers: CIMultiDict[str] = CIMultiDict(headers)
        #: The response's request id (see :func:`request_id_of`): quote it to support.
        self.request_id: str | None = request_id_of(self.headers)
        self.body = body
        problem = body if isinstance(body, Mapping) else {}
        self.title: str | None = _str_or_none(problem.get("title"))
        self.detail: str | None = _str_or_none(problem.get("detail"))
        self.type: str | None = _str_or_none(problem.get("type"))
        self.instance: str | None = _str_or_none(problem.get("instance"))

    def __str__(self) -> str:
        rid = f", request id {self.request_id}" if self.request_id else ""
        return f"{self.status} {self.message} ({self.method} {self.url}{rid})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, title={self.title!r}, "
            f"detail={self.detail!r}, method={self.method!r}, url={self.url!r}, "
            f"request_id={self.request_id!r})"
        )


class BadRequestError(APIStatusError):
    """400 Bad Request."""


class AuthenticationError(APIStatusError):
    """401: the token is missing or invalid."""


class PaymentRequiredError(APIStatusError):
    """402: the account has insufficient credit."""


class PermissionDeniedError(APIStatusError):
    """403 Forbidden."""


class NotFoundError(APIStatusError):
    """404 Not Found."""


class ConflictError(APIStatusError):
    """409 Conflict."""


class PayloadTooLargeError(APIStatusError):
    """413: an upload exceeds the size limit."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was understood but its content is invalid.

    ``invalid_fields`` lists ``{"type", "field", "description"}`` entries when the API gives them.
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        problem = self.body if isinstance(self.body, Mapping) else {}
        fields = problem.get("invalid_fields")
        self.invalid_fields: list[dict[str, Any]] = (
            [f for f in fields if isinstance(f, dict)] if isinstance(fields, list) else []
        )


class RateLimitError(APIStatusError):
    """429: throttled. ``retry_after`` is the wait the API asked for, in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """A 5xx status."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status, APIStatusError)


class PredictionError(ReplicateError):
    """A prediction or training ended in a state other than ``succeeded``."""

    def __init__(self, message: str, prediction: Prediction | Training | None) -> None:
        super().__init__(message)
        #: The prediction or training as last seen (``None`` if it was never created).
        self.prediction = prediction


class ModelError(PredictionError):
    """The model failed (status ``failed``); ``prediction.error`` and ``.logs`` say why."""


class PredictionCanceledError(PredictionError):
    """The prediction was canceled (by a user, or by its ``Cancel-After`` deadline)."""


class PredictionAbortedError(PredictionError):
    """The prediction was aborted: its deadline passed before it started running."""


class PredictionTimeoutError(PredictionError, TimeoutError):
    """The caller's ``timeout`` passed; the prediction was canceled on the server."""


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
