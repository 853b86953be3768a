"""Per-call request options on the operations of every resource: the exact request sent
for each option (``timeout``, ``extra_headers``, ``extra_query``, ``extra_body``,
``max_retries``), on every page of a list, and one connection pool shared by
``with_options`` copies and per-call options (sockets counted on a real server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aioresponses import aioresponses
from yarl import URL

from replicate_async import APIStatusError, AsyncReplicate
from replicate_async.testing import ManualClock
from tests.helpers import Watched, enforced, example, tcp_server

from ._helpers import API, TOKEN, assert_standard_headers, request_count, sent

V = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
OPTS: dict[str, Any] = {
    "timeout": 9,
    "extra_headers": {"X-Extra": "1"},
    "extra_query": {"q": "1"},
}
Op = Callable[[AsyncReplicate, dict[str, Any]], Awaitable[Any]]

# name, call, method, path, response status, response payload, JSON body sent (None: none)
CASES: list[tuple[str, Op, str, str, int, Any, Any]] = [
    (
        "predictions.create",
        lambda c, o: c.predictions.create(version=V, input={"p": 1}, **o),
        "POST", "/predictions", 201, example("prediction-create-async-starting"),
        {"version": V, "input": {"p": 1}},
    ),
    (
        "predictions.get",
        lambda c, o: c.predictions.get("abc", **o),
        "GET", "/predictions/abc", 200, example("prediction-get-processing"), None,
    ),
    (
        "predictions.cancel",
        lambda c, o: c.predictions.cancel("abc", **o),
        "POST", "/predictions/abc/cancel", 200, example("prediction-cancel-canceled"), None,
    ),
    (
        "models.get",
        lambda c, o: c.models.get("acme/m", **o),
        "GET", "/models/acme/m", 200, example("model-get-sdxl"), None,
    ),
    (
        "models.create",
        lambda c, o: c.models.create("acme", "m", visibility="private", hardware="cpu", **o),
        "POST", "/models", 201, example("model-create-201"),
        {"owner": "acme", "name": "m", "visibility": "private", "hardware": "cpu"},
    ),
    (
        "models.update",
        lambda c, o: c.models.update("acme/m", description="d", **o),
        "PATCH", "/models/acme/m", 200, example("model-get-sdxl"), {"description": "d"},
    ),
    (
        "models.predictions.create",
        lambda c, o: c.models.predictions.create("acme/m", input={"p": 1}, **o),
        "POST", "/models/acme/m/predictions", 201,
        example("prediction-create-official-model-starting"), {"input": {"p": 1}},
    ),
    (
        "models.versions.get",
        lambda c, o: c.models.versions.get("acme/m", V, **o),
        "GET", f"/models/acme/m/versions/{V}", 200, example("version-get-sdxl"), None,
    ),
    (
        "models.readme.get",
        lambda c, o: c.models.readme.get("acme/m", **o),
        "GET", "/models/acme/m/readme", 200, "# hi", None,
    ),
    (
        "trainings.create",
        lambda c, o: c.trainings.create(f"acme/m:{V}", destination="me/m", input={"a": 1}, **o),
        "POST", f"/models/acme/m/versions/{V}/trainings", 201,
        example("training-create-starting"), {"destination": "me/m", "input": {"a": 1}},
    ),
    (
        "trainings.get",
        lambda c, o: c.trainings.get("t1", **o),
        "GET", "/trainings/t1", 200, example("training-get-processing"), None,
    ),
    (
        "trainings.cancel",
        lambda c, o: c.trainings.cancel("t1", **o),
        "POST", "/trainings/t1/cancel", 200, example("training-cancel-canceled"), None,
    ),
    (
        "deployments.get",
        lambda c, o: c.deployments.get("acme/d", **o),
        "GET", "/deployments/acme/d", 200, example("deployment-get"), None,
    ),
    (
        "deployments.update",
        lambda c, o: c.deployments.update("acme/d", min_instances=1, **o),
        "PATCH", "/deployments/acme/d", 200, example("deployment-get"), {"min_instances": 1},
    ),
    (
        "deployments.predictions.create",
        lambda c, o: c.deployments.predictions.create("acme/d", input={"p": 1}, **o),
        "POST", "/deployments/acme/d/predictions", 201,
        example("prediction-create-async-starting"), {"input": {"p": 1}},
    ),
    (
        "files.get",
        lambda c, o: c.files.get("f1", **o),
        "GET", "/files/f1", 200, example("file-create-201"), None,
    ),
    (
        "files.delete",
        lambda c, o: c.files.delete("f1", **o),
        "DELETE", "/files/f1", 204, None, None,
    ),
    (
        "collections.get",
        lambda c, o: c.collections.get("image", **o),
        "GET", "/collections/image", 200, example("collection-get-TRUNCATED"), None,
    ),
    (
        "hardware.list",
        lambda c, o: c.hardware.list(**o),
        "GET", "/hardware", 200, example("hardware-list"), None,
    ),
    (
        "account.get",
        lambda c, o: c.account.get(**o),
        "GET", "/account", 200, example("account-get"), None,
    ),
    (
        "webhooks.default.secret.get",
        lambda c, o: c.webhooks.default.secret.get(**o),
        "GET", "/webhooks/default/secret", 200, example("webhooks-default-secret"), None,
    ),
]  # fmt: skip
IDS = [case[0] for case in CASES]


def _mock(mocked: aioresponses, method: str, url: str, status: int, payload: Any) -> None:
    if isinstance(payload, str):
        mocked.add(url, method, status=status, body=payload, content_type="text/plain")
    else:
        mocked.add(url, method, status=status, payload=payload)


@pytest.mark.parametrize(
    ("name", "op", "method", "path", "status", "payload", "body"), CASES, ids=IDS
)
async def test_call_options_shape_the_request(
    mocked: aioresponses,
    watched: list[Watched],
    name: str,
    op: Op,
    method: str,
    path: str,
    status: int,
    payload: Any,
    body: Any,
) -> None:
    """Extra query and headers are added, the timeout covers every phase, extra_body is
    merged into a JSON body; the client's own requests stay as they were."""
    url = f"{API}{path}?q=1"
    _mock(mocked, method, url, status, payload)
    options = {**OPTS, "extra_body": {"tag": "t"}} if body is not None else OPTS
    async with AsyncReplicate(api_token=TOKEN) as client:
        await op(client, options)
    request = sent(mocked, method, url)
    assert request.query == {"q": "1"}
    assert request.headers["X-Extra"] == "1"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert len(watched) == 1
    assert enforced(request.kwargs["timeout"], watched[0]) == (9, 9, 9)
    if body is None:
        assert request.body is None
    else:
        assert request.json() == {**body, "tag": "t"}


@pytest.mark.parametrize(
    ("name", "op", "method", "path", "status", "payload", "body"), CASES, ids=IDS
)
async def test_max_retries_zero_sends_one_request(
    mocked: aioresponses,
    clock: ManualClock,
    name: str,
    op: Op,
    method: str,
    path: str,
    status: int,
    payload: Any,
    body: Any,
) -> None:
    """A 429 is retried by default (even for a create); ``max_retries=0`` sends it once."""
    url = f"{API}{path}"
    for _ in range(3):
        mocked.add(
            url, method, status=429, payload={"detail": "slow"}, headers={"Retry-After": "0"}
        )
    async with AsyncReplicate(api_token=TOKEN, clock=clock) as client:
        with pytest.raises(APIStatusError):
            await op(client, {"max_retries": 0})
    assert request_count(mocked) == 1


async def test_without_options_the_request_is_unchanged(mocked: aioresponses) -> None:
    mocked.get(f"{API}/account", payload=example("account-get"))
    async with AsyncReplicate(api_token=TOKEN) as client:
        await client.account.get()
    request = sent(mocked, "GET", f"{API}/account")
    assert_standard_headers(request)
    assert request.query == {}


@pytest.mark.parametrize(
    ("name", "call", "path"),
    [
        ("predictions", lambda c, o: c.predictions.list(**o), "/predictions"),
        ("models", lambda c, o: c.models.list(**o), "/models"),
        ("versions", lambda c, o: c.models.versions.list("acme/m", **o), "/models/acme/m/versions"),
        ("trainings", lambda c, o: c.trainings.list(**o), "/trainings"),
        ("deployments", lambda c, o: c.deployments.list(**o), "/deployments"),
        ("files", lambda c, o: c.files.list(**o), "/files"),
        ("collections", lambda c, o: c.collections.list(**o), "/collections"),
    ],
)
async def test_every_page_request_carries_the_options(
    mocked: aioresponses,
    watched: list[Watched],
    name: str,
    call: Callable[..., Any],
    path: str,
) -> None:
    """A list's options go with the first page and with each ``next`` page."""
    first = f"{API}{path}?q=1"
    second = f"{API}{path}?cursor=c2&q=1"
    mocked.get(first, payload={"next": f"{API}{path}?cursor=c2", "previous": None, "results": []})
    mocked.get(second, payload={"next": None, "previous": None, "results": []})
    async with AsyncReplicate(api_token=TOKEN) as client:
        pages = [page async for page in call(client, OPTS).pages()]
    assert len(pages) == 2
    assert len(watched) == 2  # one attempt per page, in order
    for url, watch in zip((first, second), watched, strict=True):
        request = sent(mocked, "GET", url)
        assert request.headers["X-Extra"] == "1"
        assert enforced(request.kwargs["timeout"], watch) == (9, 9, 9)


async def test_bad_call_options_fail_before_any_request(mocked: aioresponses) -> None:
    async with AsyncReplicate(api_token=TOKEN) as client:
        with pytest.raises(ValueError):
            await client.predictions.get("abc", timeout=0)
        with pytest.raises(TypeError):
            await client.account.get(extra_headers={"X": 1})  # type: ignore[dict-item]
        with pytest.raises(TypeError):
            client.models.list(max_retry=1)  # type: ignore[call-arg]
    assert request_count(mocked) == 0


async def test_repeated_call_options_are_checked_and_sent_each_time(
    mocked: aioresponses, watched: list[Watched]
) -> None:
    """The same options on call after call (reused, not rebuilt) still shape every request,
    and a value that merely equals an accepted one (``True == 1``) is still refused."""
    for _ in range(3):
        mocked.get(f"{API}/account", payload=example("account-get"))
    async with AsyncReplicate(api_token=TOKEN) as client:
        for timeout, retries in ((1, 2), (1, 2), (1, None)):
            await client.account.get(timeout=timeout, max_retries=retries)
        with pytest.raises(TypeError):
            await client.account.get(timeout=True)
        with pytest.raises(TypeError):
            await client.account.get(timeout=1, max_retries=True)
    timeouts = [call.kwargs["timeout"] for call in mocked.requests[("GET", URL(f"{API}/account"))]]
    assert [enforced(t, w) for t, w in zip(timeouts, watched, strict=True)] == [
        (1, 1, 1),
        (1, 1, 1),
        (1, 1, 1),
    ]


@pytest.fixture
async def counting_server() -> AsyncIterator[tuple[str, list[int]]]:
    """A keep-alive HTTP/1.1 server on 127.0.0.1 answering every request with the
    account, counting the connections (sockets) it accepted."""
    connections: list[int] = []
    body = json.dumps(example("account-get")).encode()
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async with tcp_server(serve) as port:
        yield f"http://127.0.0.1:{port}/v1", connections


async def test_with_options_and_call_options_share_one_pool(
    counting_server: tuple[str, list[int]],
) -> None:
    """Sequential calls through the client, two ``with_options`` copies and per-call
    options all reuse the one kept-alive socket."""
    base_url, connections = counting_server
    async with AsyncReplicate(api_token=TOKEN, base_url=base_url) as client:
        await client.account.get()
        await client.with_options(timeout=5).account.get()
        await client.with_options(extra_headers={"X-A": "1"}, max_retries=0).account.get()
        await client.account.get(extra_query={"a": "1"}, timeout=4)
    assert len(connections) == 1


async def test_paginator_exposes_the_last_page_response(
    mocked: aioresponses, clock: ManualClock
) -> None:
    """``paginator.last_response``: the latest page's status, headers, request id, retries
    (a 503 then a 200 on the second page), and the page itself from ``parse()``."""
    first, second = f"{API}/files", f"{API}/files?cursor=c2"
    mocked.get(first, payload={"next": second, "previous": None, "results": []})
    mocked.get(second, status=503, payload={"detail": "busy"})
    mocked.get(
        second,
        payload={"next": None, "previous": None, "results": [example("file-create-201")]},
        headers={"x-request-id": "req-2"},
    )
    async with AsyncReplicate(api_token=TOKEN, clock=clock) as client:
        paginator = client.files.list()
        assert paginator.last_response is None
        pages = [page async for page in paginator.pages()]
    raw = paginator.last_response
    assert raw is not None
    assert (raw.method, raw.url, raw.status) == ("GET", second.split("?")[0], 200)
    assert (raw.request_id, raw.retries) == ("req-2", 1)
    assert raw.elapsed >= 0
    assert raw.parse() is pages[-1]
    assert [f.id for f in raw.parse().results] == [example("file-create-201")["id"]]
