"""Security: the API token stays secret, and only the API host ever receives it.

Webhook verification (wrong secret, altered body or id, stale and future timestamps,
missing headers, malformed signatures, replays) is covered by ``tests/unit/test_webhooks.py``
and is not repeated here.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from replicate_async import (
    AsyncReplicate,
    ModelError,
    PaginationError,
    RequestMayHaveSucceededError,
    RetryPolicy,
    StreamError,
)
from replicate_async.testing import FakeReplicate, ManualClock

from ._support import OtherServer, chain, raw_http_server
from .conftest import SECRET


def _texts(value: Any) -> Iterable[str]:
    """Every way a value (or an exception, with its chain) is commonly turned into text."""
    yield repr(value)
    yield str(value)
    if isinstance(value, BaseException):
        yield "".join(traceback.format_exception(value))
        for exc in chain(value):
            yield repr(exc)
            yield repr(exc.args)
            yield repr(getattr(exc, "__dict__", {}))  # e.g. aiohttp's request_info


def _log_texts(records: Iterable[logging.LogRecord]) -> Iterable[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        yield formatter.format(record)  # the message, args and any traceback
        yield repr(record.args)
        if record.exc_info and record.exc_info[1] is not None:
            yield from _texts(record.exc_info[1])


async def test_token_never_appears_in_objects_errors_or_logs(
    caplog: pytest.LogCaptureFixture, vsleep: ManualClock
) -> None:
    caplog.set_level(logging.DEBUG)
    shown: list[Any] = []
    async with FakeReplicate(token=SECRET, page_size=2) as fake:
        version = fake.latest_version_id("fake/echo")
        client = fake.client(retry=RetryPolicy(max_retries=2), clock=vsleep)
        shown += [client, client.config, client.stats]
        async with client:
            fake.faults.add("/v1/account", status=503)  # retried (and logged)
            shown.append(await client.account.get())
            fake.faults.add("/v1/predictions", method="POST", status=429, retry_after=1)
            shown.append(await client.run(f"fake/echo:{version}", input={"text": "hi"}))
            image = fake.latest_version_id("fake/image")
            shown.append(
                await client.run(f"fake/image:{image}", input={"prompt": "x"}, use_file_output=True)
            )
            shown.append(await client.predictions.list())
            shown.append(client.predictions.list())
            prediction = await client.predictions.create(version=version, input={})
            shown.append(prediction)
            shown.append([e async for e in client.stream(f"fake/echo:{version}", input={})])
            for failing in (
                lambda: client.run("fake/fail:" + fake.latest_version_id("fake/fail"), input={}),
                lambda: client.predictions.get("does-not-exist"),
                lambda: client.models.get("nobody/nothing"),
            ):
                with pytest.raises(Exception) as caught:
                    await failing()
                shown.append(caught.value)
            assert isinstance(shown[-3], ModelError)
            fake.faults.add("/v1/predictions", method="POST", drop_connection="after_body")
            with pytest.raises(RequestMayHaveSucceededError) as lost:
                await client.predictions.create(version=version, input={})
            shown.append(lost.value)
            fake.pagination_quirk = "foreign_host"
            with pytest.raises(PaginationError) as refused:
                await client.predictions.list().collect()
            shown.append(refused.value)
        async with FakeReplicate() as other_fake:
            wrong = AsyncReplicate(api_token=SECRET, base_url=other_fake.base_url)
            async with wrong:
                with pytest.raises(Exception) as unauthorized:  # the fake rejects this token
                    await wrong.account.get()
            shown.append(unauthorized.value)
    # A server that answers garbage: aiohttp's error keeps a copy of the request headers.
    async with raw_http_server(b"HTTP/1.1 abc Weird\r\nContent-Length: 0\r\n\r\n") as port:
        garbage = AsyncReplicate(
            api_token=SECRET,
            base_url=f"http://127.0.0.1:{port}/v1",
            retry=RetryPolicy(max_retries=1),
            clock=vsleep,
        )
        async with garbage:
            with pytest.raises(Exception) as malformed:
                await garbage.account.get()
            shown.append(malformed.value)

    texts = [t for value in shown for t in _texts(value)]
    texts += list(_log_texts(caplog.records))
    assert any("retrying GET" in t for t in texts)  # the logs did cover the retries
    leaks = [t for t in texts if SECRET in t]
    assert leaks == []


async def test_token_goes_to_the_api_host_and_nowhere_else(
    other: OtherServer, tmp_path: Path
) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/sse":
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(b"event: output\nid: 1\ndata: hi\n\nevent: done\ndata: {}\n\n")
            return resp
        if request.path == "/moved.png":
            raise web.HTTPFound("/out.png")
        return web.Response(body=b"PNG bytes", content_type="image/png")

    other.handler = handler
    async with FakeReplicate(token=SECRET) as fake, fake.client() as client:
        version = fake.latest_version_id("fake/echo")
        # 1. File outputs on another host: read, iterated, saved (following a redirect).
        out = await client.run(
            f"fake/echo:{version}",
            input={"a": other.url("/out.png"), "b": other.url("/moved.png")},
            use_file_output=True,
        )
        assert await out["a"].read() == b"PNG bytes"
        assert b"".join([chunk async for chunk in out["b"]]) == b"PNG bytes"
        saved = await out["a"].save(tmp_path / "out.png")
        assert saved.read_bytes() == b"PNG bytes"
        # 2. A stream on another origin.
        streamed = structure_prediction(other.url("/sse"))
        fake.faults.add("/v1/predictions", method="POST", status=201, body=streamed)
        events = [e.event async for e in client.stream(f"fake/echo:{version}", input={})]
        assert events == ["output", "done"]
        # 3. Pagination links to another host are refused without a request.
        page = {"results": [], "next": other.url("/v1/models?cursor=x"), "previous": None}
        fake.faults.add("/v1/models", method="GET", body=page)
        with pytest.raises(PaginationError):
            await client.models.list().collect()
        # 4. The API redirecting elsewhere is not followed (for JSON nor for streams).
        fake.faults.add("/v1/account", status=302, headers={"Location": other.url("/x")})
        await client.account.get()
        api_stream = structure_prediction(fake.url("/v1/streams/redirected"))
        fake.faults.add("/v1/streams/*", status=302, headers={"Location": other.url("/sse")})
        fake.faults.add("/v1/predictions", method="POST", status=201, body=api_stream)
        with pytest.raises(StreamError):
            async for _ in client.stream(f"fake/echo:{version}", input={}, max_reconnects=0):
                pass
        # 5. ...while the API's own host, file outputs included, does get it.
        image = fake.latest_version_id("fake/image")
        created = await client.predictions.create(version=image, input={"prompt": "x"})
        await fake.wait_for_prediction(created.id)
        assert (await client.file_output(fake.url(f"/delivery/{created.id}/out-0.png")).read())[
            :4
        ] == b"\x89PNG"

    assert sorted(r.path for r in other.requests) == [
        "/moved.png",
        "/out.png",
        "/out.png",
        "/out.png",
        "/sse",
    ]
    assert [r for r in other.requests if "Authorization" in r.headers] == []
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in fake.requests)
    everything = [str(r.query) for r in other.requests] + [str(r.query) for r in fake.requests]
    assert not any(SECRET in text for text in everything)  # never in a URL either


async def test_a_redirect_from_a_file_host_to_the_api_does_not_pick_up_the_token(
    other: OtherServer,
) -> None:
    """A third party choosing where the next hop goes must not get an authenticated
    request made on its behalf (its URL came from a model's output)."""
    async with FakeReplicate(token=SECRET) as fake, fake.client() as client:

        async def handler(request: web.Request) -> web.StreamResponse:
            raise web.HTTPFound(fake.url("/v1/webhooks/default/secret"))

        other.handler = handler
        download = client.file_output(other.url("/innocent.png"))
        for attempt in (download.read, lambda: _join(download)):
            with contextlib.suppress(Exception):  # unauthenticated at the API: an error
                await attempt()
    assert len(other.requests) == 2
    at_api = fake.requests_matching("GET", "/v1/webhooks/default/secret")
    assert len(at_api) == 2
    assert [r.headers.get("authorization") for r in at_api] == [None, None]


async def _join(download: Any) -> bytes:
    return b"".join([chunk async for chunk in download])


def structure_prediction(stream_url: str) -> dict[str, Any]:
    """A created prediction (as the API returns it) whose stream is at ``stream_url``."""
    return {
        "id": "streamed000000000000000000",
        "status": "starting",
        "urls": {"stream": stream_url, "get": "x", "cancel": "x"},
    }
