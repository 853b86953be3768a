"""Request options at their edges, over real sockets: header names that would smuggle a
second header line, headers no option may set, numbers out of range, ``extra_body`` only
where there is a JSON body, and raw responses for every operation.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from replicate_async import AsyncReplicate, InvalidArgumentError, RawResponse
from replicate_async.models import SearchResult
from replicate_async.testing import FakeReplicate

from .conftest import SECRET

BAD_NAMES = [
    "Authorization:Bearer x",  # would put a second Authorization line on the wire
    "X-A:",
    "X A",
    "X-A\r\nX-B",
    "",
    "X-\u00e9",
    "(X)",
    "X/Y",
]
FORBIDDEN = [
    "Authorization",
    "authorization",
    "Proxy-Authorization",
    "Host",
    "HOST",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Upgrade",
]
#: Calls that accept the option keywords, on every kind of operation.
Call = Callable[[AsyncReplicate, dict[str, Any]], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "get": lambda c, o: c.account.get(**o),
    "search": lambda c, o: c.search("echo", **o),
    "create": lambda c, o: c.predictions.create(version="a" * 64, input={}, **o),
    "cancel": lambda c, o: c.predictions.cancel("abc", **o),
    "list": lambda c, o: c.predictions.list(**o),
}


@pytest.mark.parametrize("name", BAD_NAMES + FORBIDDEN, ids=repr)
@pytest.mark.parametrize("call", CALLS, ids=str)
async def test_bad_or_forbidden_header_names_are_refused_before_anything_is_sent(
    name: str, call: str
) -> None:
    async with FakeReplicate(token=SECRET) as fake, fake.client() as client:
        with pytest.raises(InvalidArgumentError, match="extra_headers"):
            await CALLS[call](client, {"extra_headers": {name: "1"}})
        with pytest.raises(InvalidArgumentError, match="extra_headers"):
            client.with_options(extra_headers={name: "1"})
        assert fake.count() == 0


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\0b", "a\x7f", "a\x1bb"], ids=repr)
async def test_control_characters_in_header_values_are_refused(value: str) -> None:
    async with FakeReplicate() as fake, fake.client() as client:
        with pytest.raises(InvalidArgumentError):
            await client.account.get(extra_headers={"X-Trace": value})
        assert fake.count() == 0


async def test_the_token_is_the_only_authorization_on_the_wire() -> None:
    """A legal custom header goes out; the one Authorization header is the client's."""
    async with FakeReplicate(token=SECRET) as fake, fake.client() as client:
        await client.account.get(extra_headers={"X-Trace": "t\t1", "Accept-Language": "fr"})
        await client.search("echo", extra_headers={"X-Trace": "s"})
    account, search = fake.requests_matching("GET")
    assert account.headers["authorization"] == f"Bearer {SECRET}"
    assert (account.headers["x-trace"], account.headers["accept-language"]) == ("t\t1", "fr")
    assert "authorization" not in search.headers  # search needs no token, and gets none
    assert search.headers["x-trace"] == "s"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timeout": 10**400}, "timeout"),
        ({"timeout": 1e9}, "timeout"),
        ({"timeout": 86400.5}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"max_retries": 10**400}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 101}, "max_retries"),
    ],
    ids=repr,
)
@pytest.mark.parametrize("call", ["get", "search", "create", "cancel", "list"])
async def test_numeric_options_out_of_range_are_invalid_arguments(
    options: dict[str, Any], match: str, call: str
) -> None:
    async with FakeReplicate() as fake, fake.client() as client:
        with pytest.raises(InvalidArgumentError, match=match):
            await CALLS[call](client, options)
        with pytest.raises(InvalidArgumentError, match=match):
            client.with_options(**options)
        assert fake.count() == 0


async def test_the_longest_documented_timeout_is_accepted() -> None:
    async with FakeReplicate() as fake, fake.client() as client:
        await client.account.get(timeout=86400, max_retries=100)
        await client.with_options(timeout=86400.0, max_retries=0).account.get()


async def test_client_wide_extra_body_goes_only_into_json_bodies() -> None:
    """with_options(extra_body=...) reaches creates; GETs, pages, cancels and the search
    query (a text body) go out exactly as without it."""
    async with FakeReplicate() as fake, fake.client() as base:
        client = base.with_options(extra_body={"webhook_events_filter": ["completed"]})
        version = fake.latest_version_id("fake/echo")
        prediction = await client.predictions.create(version=version, input={"text": "x"})
        await client.predictions.get(prediction.id)
        await client.predictions.list()
        await client.predictions.cancel(prediction.id)
        await client.models.search("echo").collect()
        await client.account.get()
    (create,) = fake.requests_matching("POST", "/v1/predictions")
    assert json.loads(create.body)["webhook_events_filter"] == ["completed"]
    others = [r for r in fake.requests_matching() if r is not create]
    assert {(r.method, r.path) for r in others} >= {
        ("GET", f"/v1/predictions/{prediction.id}"),
        ("GET", "/v1/predictions"),
        ("POST", f"/v1/predictions/{prediction.id}/cancel"),
        ("QUERY", "/v1/models"),
        ("GET", "/v1/account"),
    }
    for request in others:
        assert b"webhook_events_filter" not in request.body, (request.method, request.path)
    (query,) = fake.requests_matching("QUERY", "/v1/models")
    assert query.body == b"echo"


async def test_with_raw_response_search_is_a_raw_response() -> None:
    async with FakeReplicate() as fake, fake.client() as client:
        raw = await client.with_raw_response.search("echo", limit=2)
    assert isinstance(raw, RawResponse)
    assert raw.status == 200
    assert raw.url.endswith("/v1/search")
    assert isinstance(raw.parse(), SearchResult)
