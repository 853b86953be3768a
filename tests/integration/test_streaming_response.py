"""``client.with_streaming_response``: status and headers first, the body only when read,
over real sockets against the fake."""

from __future__ import annotations

import asyncio
import json

import pytest

from replicate_async import File, Model, NotFoundError, Prediction
from replicate_async.testing import FakeReplicate


async def test_headers_first_then_the_typed_result(fake: FakeReplicate) -> None:
    async with fake.client() as client:
        lazy = client.with_streaming_response.models.get("fake/tokens")
        assert fake.requests == []  # nothing is sent before entering
        async with lazy as response:
            assert (response.method, response.status) == ("GET", 200)
            assert response.url == f"{fake.base_url}/models/fake/tokens"
            assert response.headers["content-type"].startswith("application/json")
            assert not response.consumed
            model = await response.parse()
            assert isinstance(model, Model)
            assert model.ref == "fake/tokens"
            assert (await response.json())["owner"] == "fake"
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/v1/models/fake/tokens")]


async def test_the_body_is_not_read_until_asked(fake: FakeReplicate) -> None:
    # The server sends the headers, then waits 0.5 s before each body chunk: entering the
    # block returns with the headers, well before the body is complete.
    fake.faults.add("/v1/models/fake/tokens", slow_body=0.5)
    async with fake.client() as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with client.with_streaming_response.models.get("fake/tokens") as response:
            headers_at = loop.time() - started
            assert response.status == 200
            chunks = [chunk async for chunk in response.iter_bytes(16)]
            body_at = loop.time() - started
    assert body_at - headers_at >= 0.4
    assert json.loads(b"".join(chunks))["name"] == "tokens"


async def test_a_post_goes_out_once_with_its_body_and_options(fake: FakeReplicate) -> None:
    async with fake.client() as client:
        lazy = client.with_streaming_response.predictions.create(
            version="fake/tokens", input={"prompt": "hi"}, extra_headers={"X-Trace": "t1"}
        )
        async with lazy as response:
            assert response.status == 201
            prediction = await response.parse()
            assert isinstance(prediction, Prediction)
            assert prediction.input == {"prompt": "hi"}
            assert await response.text() == (await response.read()).decode()
    (sent,) = fake.requests
    assert (sent.method, sent.path, sent.headers["x-trace"]) == ("POST", "/v1/predictions", "t1")
    assert json.loads(sent.body)["input"] == {"prompt": "hi"}
    assert sent.headers["authorization"] == f"Bearer {fake.token}"


async def test_multipart_upload_and_query_params(fake: FakeReplicate) -> None:
    async with fake.client() as client:
        async with client.with_streaming_response.files.create(b"hello", filename="a.txt") as r:
            uploaded = await r.parse()
        assert isinstance(uploaded, File)
        assert uploaded.size == 5
        lazy = client.with_streaming_response.account.get(extra_query={"trace": "1"})
        async with lazy as r:
            account = await r.json()
    assert account["username"] == fake.account["username"]
    upload, get = fake.requests
    assert (upload.method, upload.path) == ("POST", "/v1/files")
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert (get.path, get.query) == ("/v1/account", {"trace": "1"})


async def test_an_error_status_raises_on_entering(fake: FakeReplicate) -> None:
    fake.faults.add("/v1/predictions/*", method="GET", status=404, headers={"CF-Ray": "r1"})
    async with fake.client() as client:
        with pytest.raises(NotFoundError) as info:
            async with client.with_streaming_response.predictions.get("nothere"):
                raise AssertionError("not reached")
    assert info.value.request_id == "r1"


async def test_the_connection_is_released_when_the_block_exits(fake: FakeReplicate) -> None:
    async with fake.client(max_connections=1) as client:
        for _ in range(3):  # one slot: each block must give it back
            async with client.with_streaming_response.account.get() as response:
                assert response.status == 200
        assert (await client.account.get()).username == fake.account["username"]
