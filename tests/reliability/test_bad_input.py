"""Bad input: property tests for everything that parses what a server sends, and the
argument checks of run/run_many/stream/wait.

The SSE decoder's properties (arbitrary bytes and chunkings raise only StreamError, a
round trip, and a differential test against a reference decoder) are in
``tests/unit/test_sse.py``; they are not repeated here.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from replicate_async import (
    APIResponseValidationError,
    AsyncReplicate,
    InvalidArgumentError,
    PaginationError,
    RateLimitError,
    RetryPolicy,
    models,
)
from replicate_async._checks.body import json_body
from replicate_async._converter import StructureError, dumps, parse_datetime, structure
from replicate_async._core.response import Response, decode
from replicate_async._core.retry import parse_retry_after, retry_delay
from replicate_async.pagination import _build_page
from replicate_async.testing import FakeReplicate

from ._support import StubSession, as_session

#: Deterministic: the same examples on every run and machine (and no example database).
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


# -- Retry-After ----------------------------------------------------------------------------

http_dates = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
).map(lambda d: email.utils.format_datetime(d, usegmt=True))
header_values = st.one_of(
    st.text(),
    st.from_regex(r"\A\s*[-+]?\d{0,12}(\.\d{0,9})?([eE][-+]?\d{1,4})?\s*\Z"),
    http_dates,
    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e400", "-0", "", " ", "0x10", "1_000"]),
)


@PROPERTY
@given(
    retry_after=st.none() | header_values,
    retry_after_ms=st.none() | header_values,
    body=json_values | st.fixed_dictionaries({"retry_after": json_values}),
)
@example(retry_after="Fri, 31 Dec 9999 23:59:59 GMT", retry_after_ms=None, body=None)
@example(retry_after="Mon, 01 Jan 0001 00:00:00 GMT", retry_after_ms="nan", body=None)
@example(retry_after=None, retry_after_ms=None, body={"retry_after": 1e300})
def test_retry_after_is_a_finite_wait_or_none(
    retry_after: str | None, retry_after_ms: str | None, body: Any
) -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    value = parse_retry_after(CIMultiDictProxy(headers), body)
    assert value is None or (type(value) is float and 0.0 <= value < math.inf)
    # ...and the wait actually taken stays within the policy, whatever the server said.
    error = RateLimitError(
        "throttled", retry_after=value, method="GET", url="u", status=429, headers={}, body=body
    )
    policy = RetryPolicy()
    delay = retry_delay(error, 1, policy)
    assert 0.0 <= delay <= max(policy.max_retry_after, policy.backoff_max)


# -- cursors and `next` links ---------------------------------------------------------------

API = "https://api.example.test/v1"
hosts = st.sampled_from(
    [
        "api.example.test",
        "API.EXAMPLE.TEST",
        "api.example.test:443",
        "api.example.test:8443",
        "api.example.test.",
        "evil.example",
        "api.example.test.evil.example",
        "api.example.test@evil.example",
        "evil.example@api.example.test",
        "evil.example\\@api.example.test",
        "api.example.test\\@evil.example",
        "api.example.test:443@evil.example",
        "127.0.0.1",
        "[::1]",
        "[::1",
        "api.example.test:99999",
        "api.example.test:-1",
        "",
    ]
)
links = st.one_of(
    st.text(),
    st.builds(
        lambda scheme, sep, host, path, query: f"{scheme}{sep}{host}{path}{query}",
        st.sampled_from(["https:", "http:", "HTTPS:", "", "ftp:", "javascript:", " https:"]),
        st.sampled_from(["//", "/", "\\\\", "///", "/\\", ""]),
        hosts,
        st.sampled_from(["/v1/models", "/models", "", "/v1/../../x", "/%2e%2e/x", "/v1/@evil"])
        | st.text(max_size=12).map(lambda t: "/" + t),
        st.sampled_from(["", "?cursor=two", "?cursor=", "#frag", "?a=1&cursor=b"])
        | st.text(max_size=8).map(lambda t: "?" + t),
    ),
)


async def _follow(link: str) -> tuple[BaseException | None, list[URL], list[Mapping[str, str]]]:
    def answer(url: URL, headers: Mapping[str, str]) -> tuple[int, bytes]:
        first = len(stub.sent) == 1
        page = {"results": [], "next": link if first else None, "previous": None}
        return 200, json.dumps(page).encode()

    stub = StubSession(answer)
    error: BaseException | None = None
    async with AsyncReplicate(
        api_token="t0k", base_url=API, session=as_session(stub), max_retries=0
    ) as client:
        try:
            await client.models.list().collect()
        except Exception as exc:
            error = exc
    return error, [u for _, u, _ in stub.sent], [h for _, _, h in stub.sent]


@PROPERTY
@given(link=links)
@example(link="http://api.example.test/v1/models?cursor=two")
@example(link="//evil.example/v1/models")
@example(link="https://api.example.test:99999/v1/models")
@example(link="https://[::1/v1/models")
@example(link="https://[]@")
@example(link="https://\\@api.example.test/v1/models")
def test_any_next_link_is_followed_on_the_api_host_or_refused(link: str) -> None:
    error, urls, headers = asyncio.run(_follow(link))
    assert urls[0] == URL(f"{API}/models")
    if error is not None:
        assert isinstance(error, PaginationError), repr(error)
        assert len(urls) == 1
        return
    # Followed (or the list ended): every request went to the API's own origin.
    for url, sent in zip(urls, headers, strict=True):
        assert (url.scheme, url.host, url.port) == ("https", "api.example.test", 443), url
        assert sent["Authorization"] == "Bearer t0k"
    assert len(urls) <= 2


@PROPERTY
@given(cursor=st.text() | links)
def test_any_saved_cursor_is_refused_or_resumes_on_the_api(cursor: str) -> None:
    async def resume() -> tuple[BaseException | None, list[URL]]:
        stub = StubSession(lambda u, h: (200, b'{"results": [], "next": null}'))
        async with AsyncReplicate(api_token="t", base_url=API, session=as_session(stub)) as c:
            try:
                await c.models.list(cursor=cursor).collect()
            except (ValueError, PaginationError) as exc:
                return exc, [u for _, u, _ in stub.sent]
        return None, [u for _, u, _ in stub.sent]

    error, urls = asyncio.run(resume())
    if error is not None:
        assert urls == []
        return
    assert [(u.scheme, u.host, u.port) for u in urls] == [("https", "api.example.test", 443)]


# -- timestamps -----------------------------------------------------------------------------

near_timestamps = st.from_regex(
    r"\A\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d([.,]\d{1,12})?([Zz]|[-+]\d\d:?\d\d)?\Z"
)


@PROPERTY
@given(text=st.text() | near_timestamps)
@example(text="2024-01-01T00:00:00+99:00")
@example(text="2024-02-30T00:00:00Z")
@example(text="0000-01-01T00:00:00Z")
@example(text="\u0662\u0660\u0662\u0664-01-01T00:00:00Z")  # non-ASCII digits
def test_any_string_parses_to_an_aware_datetime_or_structure_error(text: str) -> None:
    try:
        value = parse_datetime(text)
    except StructureError:
        return
    assert isinstance(value, datetime)
    assert value.tzinfo is not None


offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@PROPERTY
@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    zone=st.just(UTC) | offsets,
    digits=st.integers(min_value=0, max_value=9),
    extra=st.text(alphabet="0123456789", min_size=3, max_size=3),
    zulu=st.sampled_from(["Z", "z", "+00:00"]),
)
def test_rfc3339_round_trips_to_the_microsecond(
    moment: datetime, zone: timezone, digits: int, extra: str, zulu: str
) -> None:
    aware = moment.replace(tzinfo=zone)
    fraction = (f"{aware.microsecond:06d}" + extra)[:digits]
    offset = aware.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        suffix = zulu
    else:
        minutes = int(offset.total_seconds()) // 60
        suffix = f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    clock = f"{aware.year:04d}-{aware.month:02d}-{aware.day:02d}T{aware:%H:%M:%S}"
    text = clock + (f".{fraction}" if digits else "") + suffix
    expected = aware.replace(microsecond=int(fraction[:6].ljust(6, "0")) if digits else 0)
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


# -- the converter --------------------------------------------------------------------------

MODEL_CLASSES = sorted(
    (cls for cls in vars(models).values() if isinstance(cls, type) and attrs.has(cls)),
    key=lambda cls: cls.__name__,
)


def shaped(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Objects with the model's own field names (and nested shapes), arbitrary values."""
    names = [f.name for f in attrs.fields(cls) if f.name != "raw"]
    return st.dictionaries(st.sampled_from(names), json_values, max_size=len(names)) | (
        st.fixed_dictionaries(dict.fromkeys(names, json_values))
    )


def _structures_or_refuses(cls: type[Any], value: Any) -> None:
    try:
        built = structure(value, cls)
    except StructureError:
        return
    assert isinstance(built, cls)
    assert built.raw == value
    repr(built)  # and it can be shown
    for prop in ("done", "succeeded", "ref"):
        if hasattr(cls, prop):
            getattr(built, prop)


@settings(PROPERTY, max_examples=400)
@given(data=st.data())
def test_any_json_builds_a_model_or_raises_structure_error(data: st.DataObject) -> None:
    cls = data.draw(st.sampled_from(MODEL_CLASSES), label="model class")
    _structures_or_refuses(cls, data.draw(json_values | shaped(cls), label="value"))


ODD_VALUES = [None, True, 0, -1, 2**70, 1.5, math.nan, "", "x", "2024-13-45T99:99:99Z", [], [1], {}]


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda c: c.__name__)
def test_every_field_of_every_model_takes_any_kind_of_value(cls: type[Any]) -> None:
    """Each field alone, and with the others present, gets one value of every JSON kind."""
    names = [f.name for f in attrs.fields(cls) if f.name != "raw"]
    full = dict.fromkeys(names, "x")
    for name in names:
        for value in ODD_VALUES:
            _structures_or_refuses(cls, {name: value})
            _structures_or_refuses(cls, {**full, name: value})
            _structures_or_refuses(cls, {**full, name: {"nested": [value]}})


@PROPERTY
@given(body=st.binary() | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_response_body_decodes_or_raises_validation_error(body: bytes) -> None:
    response = Response("GET", f"{API}/predictions", 200, CIMultiDictProxy(CIMultiDict()), body)
    for build in (
        lambda data: structure(data, models.Prediction),
        lambda data: _build_page(data, models.Model),
    ):
        error: APIResponseValidationError | None = None
        try:
            decode(response, build)
        except APIResponseValidationError as exc:
            error = exc
        if error is not None:
            assert (error.status, error.url) == (200, f"{API}/predictions")


# -- request bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_floats_are_not_json(bad: float) -> None:
    """JSON has no NaN or Infinity: sending one must fail, never turn into ``null``."""
    with pytest.raises(ValueError, match="JSON"):
        dumps({"input": {"x": [1.0, {"y": bad}]}})
    with pytest.raises(InvalidArgumentError, match=r"the request body\['input'\]\['x'\]"):
        json_body({"input": {"x": bad}})
    assert dumps({"x": None, "y": 1.5}) == b'{"x":null,"y":1.5}'


# -- arguments of run / run_many / stream / wait ----------------------------------------------

Bad = Callable[[AsyncReplicate, str, models.Prediction], Any]


async def _drain(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


BAD_ARGUMENTS: list[Any] = [
    # run: the deadline
    pytest.param(lambda c, r, p: c.run(r, input={}, timeout=0), ValueError, id="run timeout=0"),
    pytest.param(lambda c, r, p: c.run(r, input={}, timeout=-1), ValueError, id="run timeout<0"),
    pytest.param(
        lambda c, r, p: c.run(r, input={}, timeout=math.nan), ValueError, id="run timeout=nan"
    ),
    pytest.param(
        lambda c, r, p: c.run(r, input={}, timeout="10"), TypeError, id="run timeout='10'"
    ),
    pytest.param(lambda c, r, p: c.run(r, input={}, timeout=[1]), TypeError, id="run timeout=[1]"),
    pytest.param(
        lambda c, r, p: c.run(r, input={}, timeout=math.inf),
        ValueError,
        id="run timeout=inf",
    ),
    pytest.param(
        lambda c, r, p: c.run(r, input={}, timeout=True),
        TypeError,
        id="run timeout=True",
    ),
    # run: target, input, options
    pytest.param(lambda c, r, p: c.run(123, input={}), TypeError, id="run ref=123"),
    pytest.param(lambda c, r, p: c.run("a/b/c", input={}), ValueError, id="run ref=a/b/c"),
    pytest.param(lambda c, r, p: c.run(input={}), ValueError, id="run no ref"),
    pytest.param(
        lambda c, r, p: c.run(r, input={}, deployment="a/b"), ValueError, id="run ref+deployment"
    ),
    pytest.param(lambda c, r, p: c.run(r, input="x"), TypeError, id="run input='x'"),
    pytest.param(lambda c, r, p: c.run(r, input={1: "x"}), TypeError, id="run input key=1"),
    pytest.param(
        lambda c, r, p: c.run(r, input={"x": object()}), TypeError, id="run input object()"
    ),
    pytest.param(lambda c, r, p: c.run(r, input={"x": {1, 2}}), TypeError, id="run input set"),
    pytest.param(
        lambda c, r, p: c.run(r, input={"x": math.nan}),
        InvalidArgumentError,
        id="run input nan",
    ),
    pytest.param(lambda c, r, p: c.run(r, input={}, wait=0), ValueError, id="run wait=0"),
    pytest.param(lambda c, r, p: c.run(r, input={}, wait=1.5), TypeError, id="run wait=1.5"),
    pytest.param(
        lambda c, r, p: c.run(r, input={}, cancel_after=-1), ValueError, id="run cancel_after<0"
    ),
    # run_many
    pytest.param(lambda c, r, p: _drain(c.run_many("nope", [{}])), ValueError, id="many ref"),
    pytest.param(
        lambda c, r, p: _drain(c.run_many(r, [{}], concurrency=0)), ValueError, id="many conc=0"
    ),
    pytest.param(lambda c, r, p: _drain(c.run_many(r, 5)), TypeError, id="many inputs=5"),
    pytest.param(
        lambda c, r, p: _drain(c.run_many(r, [{}], timeout=-1)),
        ValueError,
        id="many timeout<0",
    ),
    pytest.param(
        lambda c, r, p: _drain(c.run_many(r, [{}], wait=0)),
        ValueError,
        id="many wait=0",
    ),
    # stream
    pytest.param(lambda c, r, p: _drain(c.stream("nope", input={})), ValueError, id="stream ref"),
    pytest.param(
        lambda c, r, p: _drain(c.stream(r, input={"x": object()})),
        TypeError,
        id="stream input object()",
    ),
    pytest.param(
        lambda c, r, p: _drain(c.stream(r, input={}, idle_timeout=-1, max_reconnects=0)),
        ValueError,
        id="stream idle_timeout<0",
    ),
    pytest.param(
        lambda c, r, p: _drain(c.stream(r, input={}, idle_timeout=0, max_reconnects=0)),
        ValueError,
        id="stream idle_timeout=0",
    ),
    pytest.param(
        lambda c, r, p: _drain(c.stream(r, input={}, idle_timeout="x")),
        TypeError,
        id="stream idle_timeout='x'",
    ),
    pytest.param(
        lambda c, r, p: _drain(c.stream(r, input={}, max_reconnects=-1)),
        ValueError,
        id="stream max_reconnects<0",
    ),
    # predictions.wait
    pytest.param(lambda c, r, p: c.predictions.wait(p, timeout=-1), ValueError, id="wait t<0"),
    pytest.param(lambda c, r, p: c.predictions.wait(p, timeout=0), ValueError, id="wait t=0"),
    pytest.param(lambda c, r, p: c.predictions.wait(5), TypeError, id="wait prediction=5"),
    pytest.param(lambda c, r, p: c.predictions.wait(""), ValueError, id="wait prediction=''"),
    pytest.param(
        lambda c, r, p: c.predictions.wait(p.id, timeout=-1),
        ValueError,
        id="wait by id t<0",
    ),
    pytest.param(
        lambda c, r, p: c.predictions.wait(p, poll=5),
        TypeError,
        id="wait poll=5",
    ),
]


@pytest.mark.parametrize(("call", "error"), BAD_ARGUMENTS)
async def test_bad_arguments_raise_before_any_request(
    replicate_fake: FakeReplicate, call: Bad, error: type[Exception]
) -> None:
    fake = replicate_fake
    version = fake.latest_version_id("fake/echo")
    async with fake.client() as client:
        prediction = await client.predictions.create(version=version, input={"text": "x"})
        fake.clear_requests()
        with pytest.raises(error):
            await call(client, f"fake/echo:{version}", prediction)
    assert fake.requests == []
