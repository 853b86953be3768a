"""Error mapping: status codes, problem bodies, non-JSON bodies, bad 2xx bodies, transport."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from unittest.mock import Mock

import aiohttp
import pytest
from aioresponses import aioresponses

import replicate_async
from replicate_async import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncReplicate,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    ReplicateError,
    RequestMayHaveSucceededError,
    UnprocessableEntityError,
)
from tests.helpers import example

from ._helpers import API, TOKEN, converter_without_orjson, request_count

PROBLEM = "application/problem+json"
PRED = f"{API}/predictions/abc"

CASES: list[tuple[int, str | dict[str, Any], type[APIStatusError]]] = [
    (400, {"detail": 'Query parameter "query" is required'}, BadRequestError),
    (401, "error-401-unauthenticated", AuthenticationError),
    (402, "error-402-insufficient-credit", PaymentRequiredError),
    (
        403,
        {"title": "Forbidden", "detail": "You do not own this model", "status": 403},
        PermissionDeniedError,
    ),
    (404, "error-404-not-found-generic", NotFoundError),
    (404, "error-404-training-destination", NotFoundError),
    (409, {"detail": "Deployment is still in use", "status": 409}, ConflictError),
    (413, "error-413-file-too-large-spec", PayloadTooLargeError),
    (422, "error-422-input-validation", UnprocessableEntityError),
    (422, "error-422-invalid-version", UnprocessableEntityError),
    (422, "error-422-request-body-validation", UnprocessableEntityError),
    (429, "error-429-throttled-docs", RateLimitError),
    (429, "error-429-throttled-low-credit", RateLimitError),
    (500, {"detail": "Search service error"}, InternalServerError),
    (502, {"detail": "Bad gateway", "status": 502}, InternalServerError),
    (
        503,
        {"title": "Service Unavailable", "detail": "Try later", "status": 503},
        InternalServerError,
    ),
]


def _body(spec: str | dict[str, Any]) -> dict[str, Any]:
    return example(spec) if isinstance(spec, str) else spec


def _no_token(error: BaseException) -> None:
    assert TOKEN not in str(error)
    assert TOKEN not in repr(error)
    for arg in error.args:
        assert TOKEN not in str(arg)


@pytest.fixture
def no_retry_client(clock: Any) -> AsyncReplicate:
    """A client that never retries, so each status is seen exactly once."""
    return AsyncReplicate(api_token=TOKEN, base_url=API, max_retries=0, clock=clock)


@pytest.mark.parametrize(
    ("status", "spec", "cls"),
    CASES,
    ids=[f"{c[0]}-{c[2].__name__}" + (f"-{c[1]}" if isinstance(c[1], str) else "") for c in CASES],
)
async def test_status_maps_to_exception(
    no_retry_client: AsyncReplicate,
    mocked: aioresponses,
    status: int,
    spec: str | dict[str, Any],
    cls: type[APIStatusError],
) -> None:
    """Each error status with a real problem body raises its class with every attribute set."""
    body = _body(spec)
    mocked.get(
        f"{PRED}?x=secret-sig",
        status=status,
        payload=body,
        content_type=PROBLEM,
        headers={"X-Request-Id": "req-1"},
    )
    async with no_retry_client as client:
        with pytest.raises(cls) as info:
            await client._http.request("GET", "predictions/abc", params={"x": "secret-sig"})
    error = info.value
    assert type(error) is cls
    assert isinstance(error, APIStatusError)
    assert isinstance(error, ReplicateError)
    assert error.status == status
    assert error.body == body
    assert error.title == body.get("title")
    assert error.detail == body.get("detail")
    assert error.method == "GET"
    assert error.url == PRED  # never the query string
    assert "secret-sig" not in str(error)
    assert "secret-sig" not in repr(error)
    assert error.headers["X-Request-Id"] == "req-1"
    assert error.headers["x-request-id"] == "req-1"  # case-insensitive
    assert str(status) in str(error)
    if body.get("detail"):
        assert body["detail"] in str(error)
    _no_token(error)
    assert request_count(mocked) == 1


async def test_422_invalid_fields(client: AsyncReplicate, mocked: aioresponses) -> None:
    """422 carries the invalid_fields list from the body."""
    mocked.post(
        f"{API}/predictions",
        status=422,
        payload=example("error-422-input-validation"),
        content_type=PROBLEM,
    )
    with pytest.raises(UnprocessableEntityError) as info:
        await client.predictions.create(version="a" * 64, input={})
    assert info.value.invalid_fields == example("error-422-input-validation")["invalid_fields"]
    assert info.value.invalid_fields[1]["type"] == "number_lte"
    assert info.value.title == "Input validation failed"


async def test_422_without_invalid_fields(client: AsyncReplicate, mocked: aioresponses) -> None:
    """A 422 without invalid_fields (or with a malformed one) gives an empty list."""
    mocked.post(
        f"{API}/predictions",
        status=422,
        payload={"detail": "x", "invalid_fields": "no"},
        content_type=PROBLEM,
    )
    with pytest.raises(UnprocessableEntityError) as info:
        await client.predictions.create(version="a" * 64, input={})
    assert info.value.invalid_fields == []


async def test_429_retry_after_header_seconds(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """429 with Retry-After seconds sets retry_after."""
    mocked.get(
        PRED, status=429, payload=example("error-429-throttled-docs"), headers={"Retry-After": "7"}
    )
    async with no_retry_client as client:
        with pytest.raises(RateLimitError) as info:
            await client.predictions.get("abc")
    assert info.value.retry_after == 7.0
    assert info.value.detail == "Request was throttled. Expected available in 1 second."


async def test_429_retry_after_http_date(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """429 with an HTTP-date Retry-After gives the seconds until then."""
    when = datetime.now(UTC) + timedelta(seconds=30)
    mocked.get(
        PRED,
        status=429,
        payload=example("error-429-throttled-docs"),
        headers={"Retry-After": format_datetime(when, usegmt=True)},
    )
    async with no_retry_client as client:
        with pytest.raises(RateLimitError) as info:
            await client.predictions.get("abc")
    assert info.value.retry_after is not None
    assert 25.0 < info.value.retry_after <= 30.0


async def test_429_retry_after_body(no_retry_client: AsyncReplicate, mocked: aioresponses) -> None:
    """429 with only the body's retry_after uses it."""
    mocked.get(PRED, status=429, payload=example("error-429-throttled-low-credit"))
    async with no_retry_client as client:
        with pytest.raises(RateLimitError) as info:
            await client.predictions.get("abc")
    assert info.value.retry_after == 5.0
    assert info.value.status == 429


async def test_429_without_any_retry_after(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """429 without header or body field leaves retry_after None."""
    mocked.get(PRED, status=429, body=b"")
    async with no_retry_client as client:
        with pytest.raises(RateLimitError) as info:
            await client.predictions.get("abc")
    assert info.value.retry_after is None
    assert info.value.body == ""


async def test_problem_body_without_title_and_status(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A bare {"detail"} body: status from HTTP, title None, message from the detail."""
    mocked.get(PRED, status=404, payload={"detail": "File not found"}, content_type=PROBLEM)
    async with no_retry_client as client:
        with pytest.raises(NotFoundError) as info:
            await client.predictions.get("abc")
    assert info.value.status == 404
    assert info.value.title is None
    assert info.value.detail == "File not found"
    assert str(info.value) == f"404 File not found (GET {PRED})"


async def test_problem_body_type_and_instance(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """RFC 7807 type/instance are exposed; non-string members become None."""
    body = {"type": "about:blank", "instance": "/x", "title": 5, "detail": ["x"], "status": 400}
    mocked.get(PRED, status=400, payload=body, content_type=PROBLEM)
    async with no_retry_client as client:
        with pytest.raises(BadRequestError) as info:
            await client.predictions.get("abc")
    assert info.value.type == "about:blank"
    assert info.value.instance == "/x"
    assert info.value.title is None
    assert info.value.detail is None
    assert "Bad Request" in str(info.value)


@pytest.mark.parametrize("status", [502, 503, 500])
async def test_html_error_body(
    no_retry_client: AsyncReplicate, mocked: aioresponses, status: int
) -> None:
    """An HTML gateway page never crashes the parser: typed error, body kept as text."""
    mocked.get(PRED, status=status, body=b"<html>bad gateway</html>", content_type="text/html")
    async with no_retry_client as client:
        with pytest.raises(InternalServerError) as info:
            await client.predictions.get("abc")
    assert info.value.status == status
    assert info.value.body == "<html>bad gateway</html>"
    assert info.value.title is None
    assert info.value.detail is None
    assert info.value.headers["Content-Type"] == "text/html"


@pytest.mark.parametrize(
    ("status", "cls"),
    [(500, InternalServerError), (404, NotFoundError), (401, AuthenticationError)],
)
async def test_empty_error_body(
    no_retry_client: AsyncReplicate,
    mocked: aioresponses,
    status: int,
    cls: type[APIStatusError],
) -> None:
    """An empty error body gives a typed error with the reason phrase as message."""
    mocked.get(PRED, status=status, body=b"")
    async with no_retry_client as client:
        with pytest.raises(cls) as info:
            await client.predictions.get("abc")
    assert info.value.body == ""
    from http import HTTPStatus

    assert HTTPStatus(status).phrase in str(info.value)


async def test_truncated_json_error_body(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A JSON-looking but broken error body is kept as text, not a decode crash."""
    mocked.get(PRED, status=400, body=b'{"detail": "cut', content_type=PROBLEM)
    async with no_retry_client as client:
        with pytest.raises(BadRequestError) as info:
            await client.predictions.get("abc")
    assert info.value.body == '{"detail": "cut'
    assert info.value.detail is None


async def test_unmapped_status_is_base_status_error(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A 4xx without its own class (418) is a plain APIStatusError."""
    mocked.get(PRED, status=418, payload={"detail": "teapot"})
    async with no_retry_client as client:
        with pytest.raises(APIStatusError) as info:
            await client.predictions.get("abc")
    assert type(info.value) is APIStatusError
    assert info.value.status == 418


async def test_search_errors_are_plain_json(client: AsyncReplicate, mocked: aioresponses) -> None:
    """/search 400 errors (application/json) map like problem bodies."""
    url = f"{API}/search?query=x"
    mocked.get(url, status=400, payload={"detail": 'Query parameter "query" is required'})
    with pytest.raises(BadRequestError) as info:
        await client.search("x")
    assert info.value.detail == 'Query parameter "query" is required'
    assert info.value.url == f"{API}/search"


async def test_huge_error_body_is_truncated(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A long non-JSON error body is truncated to a bounded size."""
    mocked.get(PRED, status=500, body=b"x" * 20000, content_type="text/plain")
    async with no_retry_client as client:
        with pytest.raises(InternalServerError) as info:
            await client.predictions.get("abc")
    assert isinstance(info.value.body, str)
    assert 0 < len(info.value.body) <= 4096


# -- bad 2xx bodies -------------------------------------------------------------------

#: Bodies every JSON decoder must reject, with orjson and with the standard library.
HOSTILE = {
    "deep": b"[" * 5_000 + b"]" * 5_000,
    "deep object": b'{"a":' * 2_000 + b"1" + b"}" * 2_000,
    "NaN": b'{"id": "x", "metrics": {"predict_time": NaN}}',
    "Infinity": b'{"id": "x", "metrics": {"predict_time": -Infinity}}',
    "1e400": b'{"id": "x", "metrics": {"predict_time": 1e400}}',
    "huge int": b'{"id": "x", "n": ' + b"9" * 5000 + b"}",
}


def _stdlib_loads(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The converter's ``loads`` as built without orjson (the stdlib fallback)."""
    return converter_without_orjson(monkeypatch).loads


@pytest.mark.parametrize("decoder", ["orjson", "stdlib"])
@pytest.mark.parametrize("name", list(HOSTILE))
async def test_hostile_200_bodies_are_validation_errors(
    client: AsyncReplicate,
    mocked: aioresponses,
    monkeypatch: pytest.MonkeyPatch,
    decoder: str,
    name: str,
) -> None:
    """Depth, NaN, infinities and huge numbers: APIResponseValidationError with either
    decoder, never RecursionError/OverflowError (and never a 'valid' NaN)."""
    if decoder == "stdlib":
        monkeypatch.setattr("replicate_async._core.response.loads", _stdlib_loads(monkeypatch))
    mocked.get(PRED, body=HOSTILE[name])
    with pytest.raises(APIResponseValidationError) as info:
        await client.predictions.get("abc")
    assert info.value.status == 200
    assert len(str(info.value.body)) <= 2048


@pytest.mark.parametrize("decoder", ["orjson", "stdlib"])
async def test_hostile_error_body_keeps_the_status_error(
    client: AsyncReplicate,
    mocked: aioresponses,
    monkeypatch: pytest.MonkeyPatch,
    decoder: str,
) -> None:
    """A 404 whose body nests 2,000 deep is still a NotFoundError, its body kept as text."""
    if decoder == "stdlib":
        monkeypatch.setattr("replicate_async._core.errors.loads", _stdlib_loads(monkeypatch))
    mocked.get(PRED, status=404, body=HOSTILE["deep object"], content_type=PROBLEM)
    with pytest.raises(NotFoundError) as info:
        await client.predictions.get("abc")
    assert isinstance(info.value.body, str)
    assert len(info.value.body) == 2048


@pytest.mark.parametrize("body", [b"not json", b"", b'{"id": "x", ', b"<html>ok</html>"])
async def test_200_invalid_json(client: AsyncReplicate, mocked: aioresponses, body: bytes) -> None:
    """A 200 whose body is not JSON raises APIResponseValidationError (chained)."""
    mocked.get(PRED, body=body)
    with pytest.raises(APIResponseValidationError) as info:
        await client.predictions.get("abc")
    error = info.value
    assert error.status == 200
    assert error.method == "GET"
    assert error.url == PRED
    assert isinstance(error.__cause__, ValueError)
    assert request_count(mocked) == 1  # a bad body is not retried
    _no_token(error)


@pytest.mark.parametrize(
    "payload",
    [
        [example("prediction-get-processing")],
        {"status": "processing"},
        {"id": 123, "status": "processing"},
        "just a string",
        None,
    ],
)
async def test_200_wrong_shape(client: AsyncReplicate, mocked: aioresponses, payload: Any) -> None:
    """A 200 whose JSON is the wrong shape raises APIResponseValidationError with the body."""
    mocked.get(PRED, body=json.dumps(payload))
    with pytest.raises(APIResponseValidationError) as info:
        await client.predictions.get("abc")
    assert info.value.body == payload
    assert "unexpected response shape" in str(info.value) or "expected" in str(info.value)
    assert info.value.__cause__ is not None


async def test_hardware_object_instead_of_array(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """hardware.list given an object instead of an array is a validation error."""
    mocked.get(f"{API}/hardware", payload={"results": []})
    with pytest.raises(APIResponseValidationError):
        await client.hardware.list()


async def test_page_without_results(client: AsyncReplicate, mocked: aioresponses) -> None:
    """A page body lacking `results` is a validation error."""
    mocked.get(f"{API}/predictions", payload={"next": None})
    with pytest.raises(APIResponseValidationError):
        await client.predictions.list()


def test_response_validation_is_not_a_status_error() -> None:
    """APIResponseValidationError is an APIError, but not a status or connection error."""
    assert issubclass(APIResponseValidationError, APIError)
    assert not issubclass(APIResponseValidationError, APIStatusError | APIConnectionError)


# -- transport failures ---------------------------------------------------------------


def _connector_error_real_key() -> aiohttp.ClientConnectorError:
    from aiohttp.client_reqrep import ConnectionKey

    key = ConnectionKey("api.replicate.com", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))


def _connector_error(host: str = "api.replicate.com") -> aiohttp.ClientConnectorError:
    key = Mock(host=host, port=443, is_ssl=True, ssl=True)
    return aiohttp.ClientConnectorError(key, OSError(111, "Connection refused"))


@pytest.mark.parametrize(
    ("exc", "cls", "connect_failed"),
    [
        (_connector_error(), APIConnectionError, True),
        (_connector_error_real_key(), APIConnectionError, True),
        (aiohttp.ServerDisconnectedError(), APIConnectionError, False),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), APIConnectionError, False),
        (
            aiohttp.ClientPayloadError("Response payload is not completed"),
            APIConnectionError,
            False,
        ),
        (TimeoutError(), APITimeoutError, False),
        (aiohttp.ConnectionTimeoutError("connect timed out"), APITimeoutError, True),
        (aiohttp.SocketTimeoutError("read timed out"), APITimeoutError, False),
    ],
    ids=[
        "refused",
        "refused-connection-key",
        "disconnected",
        "reset",
        "payload",
        "timeout",
        "connect-timeout",
        "read-timeout",
    ],
)
async def test_transport_errors_are_wrapped(
    no_retry_client: AsyncReplicate,
    mocked: aioresponses,
    exc: BaseException,
    cls: type[APIConnectionError],
    connect_failed: bool,
) -> None:
    """aiohttp/asyncio failures become APIConnectionError/APITimeoutError, chained."""
    mocked.get(PRED, exception=exc)
    async with no_retry_client as client:
        with pytest.raises(APIConnectionError) as info:
            await client.predictions.get("abc")
    error = info.value
    assert type(error) is cls
    assert error.__cause__ is exc
    assert error.connect_failed is connect_failed
    assert error.method == "GET"
    assert error.url == PRED
    assert not isinstance(error, RequestMayHaveSucceededError)
    _no_token(error)


def test_connector_error_formats_host() -> None:
    """The constructed ClientConnectorError renders like aiohttp's real one."""
    text = str(_connector_error())
    assert text.startswith("Cannot connect to host api.replicate.com:443")
    assert "Connection refused" in text


async def test_connection_error_message_mentions_cause(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """The wrapped message says what happened, without any token."""
    mocked.get(PRED, exception=_connector_error())
    async with no_retry_client as client:
        with pytest.raises(APIConnectionError) as info:
            await client.predictions.get("abc")
    assert "could not connect" in str(info.value)
    assert "Connection refused" in str(info.value)


@pytest.mark.parametrize(
    "exc",
    [
        aiohttp.ServerDisconnectedError(),
        TimeoutError(),
        aiohttp.ClientOSError(104, "reset"),
    ],
    ids=["disconnected", "timeout", "reset"],
)
async def test_create_lost_response_may_have_succeeded(
    client: AsyncReplicate, mocked: aioresponses, exc: BaseException
) -> None:
    """A create whose response was lost raises RequestMayHaveSucceededError, sent once."""
    mocked.post(f"{API}/predictions", exception=exc)
    with pytest.raises(RequestMayHaveSucceededError) as info:
        await client.predictions.create(version="a" * 64, input={})
    assert info.value.__cause__ is exc
    assert isinstance(info.value, APIConnectionError)
    assert info.value.connect_failed is False
    assert "may have created" in str(info.value)
    assert request_count(mocked) == 1
    _no_token(info.value)


async def test_token_never_in_errors_even_if_server_echoes_it(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """Errors only show the response; the request's Authorization header is not kept."""
    mocked.get(PRED, status=401, payload=example("error-401-unauthenticated"))
    async with no_retry_client as client:
        with pytest.raises(AuthenticationError) as info:
            await client.predictions.get("abc")
    assert "Authorization" not in info.value.headers
    _no_token(info.value)
    assert TOKEN not in repr(info.value.__dict__)


def test_exception_tree() -> None:
    """The documented hierarchy holds (status errors are APIErrors are ReplicateErrors)."""
    for name in replicate_async.exceptions.__all__:
        cls = getattr(replicate_async.exceptions, name)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            assert issubclass(cls, ReplicateError), name
    assert issubclass(APITimeoutError, APIConnectionError)
    assert issubclass(RequestMayHaveSucceededError, APIConnectionError)
    lost_in_time = replicate_async.exceptions.RequestMayHaveSucceededTimeoutError
    assert issubclass(lost_in_time, RequestMayHaveSucceededError)
    assert issubclass(lost_in_time, APITimeoutError)
    assert issubclass(InternalServerError, APIStatusError)
    assert issubclass(replicate_async.MissingTokenError, ValueError)
    assert issubclass(replicate_async.ClientClosedError, RuntimeError)
    assert replicate_async.exceptions.status_error_class(599) is InternalServerError
    assert replicate_async.exceptions.status_error_class(451) is APIStatusError


async def test_problem_body_with_leading_whitespace(
    no_retry_client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A problem body preceded by whitespace is still parsed as JSON."""
    mocked.get(
        PRED, status=404, body=b'\n  {"detail": "gone", "status": 404}\n', content_type=PROBLEM
    )
    async with no_retry_client as client:
        with pytest.raises(NotFoundError) as info:
            await client.predictions.get("abc")
    assert info.value.detail == "gone"
    assert info.value.body == {"detail": "gone", "status": 404}


@pytest.mark.parametrize(
    ("status", "phrase"),
    [(413, "Request Entity Too Large"), (422, "Unprocessable Entity"), (404, "Not Found")],
)
def test_reason_phrases_do_not_depend_on_the_python(status: int, phrase: str) -> None:
    """Python 3.13 renamed some phrases (RFC 9110); messages keep one spelling everywhere."""
    from replicate_async._core.errors import reason

    assert reason(status) == phrase
