"""The fake treats what its clients send as untrusted (users' test suites run it): declared
sizes are claims, slow heads have a deadline, options are range-checked, stored outputs
can always be listed, credentials never reach the inspect log, and webhook verification
answers ``False`` to anything malformed."""

from __future__ import annotations

import asyncio
import gc
import json
import math
import tracemalloc
from typing import Any

import aiohttp
import pytest

from replicate_async.testing import FakeReplicate, sign_webhook, verify_webhook

MB = 1024 * 1024


async def _connect(fake: FakeReplicate) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", fake.port)


async def test_thirty_connections_declaring_100_mb_hold_only_what_arrived() -> None:
    async with FakeReplicate() as fake:
        head = (
            "POST /v1/predictions HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {fake.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {100 * MB}\r\n\r\n"
        ).encode()
        gc.collect()
        tracemalloc.start()
        try:
            idle = tracemalloc.get_traced_memory()[0]
            connections = [await _connect(fake) for _ in range(30)]
            for _, writer in connections:
                writer.write(head + b'{"version": "fake/echo", "input": {"text": "')
                await writer.drain()
            for _ in range(20):  # let the fake accept, parse and start reading every body
                await asyncio.sleep(0.01)
            loaded = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        for _, writer in connections:
            writer.close()
        # Before: each body's buffer was sized from the declared length (+3 GB here).
        assert loaded - idle < 5 * MB, f"{(loaded - idle) / MB:.1f} MB for 30 declared bodies"
        assert len(connections) == 30


async def test_a_request_head_trickling_in_gets_a_408_and_the_connection_closes() -> None:
    async with FakeReplicate(head_timeout=0.3) as fake:
        reader, writer = await _connect(fake)
        writer.write(b"GET /v1/account HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for line in range(100):  # one header line every 50 ms: at most 5 s, never done
            try:
                writer.write(f"X-Line-{line}: slow\r\n".encode())
                await writer.drain()
            except ConnectionError:
                break
            try:
                answer += await asyncio.wait_for(reader.read(4096), 0.05)
            except TimeoutError:
                continue
            if answer:
                break
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert b"Connection: close" in answer
        body = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert body["detail"] == "The request head did not arrive in time"
        rejected = [r for r in fake.requests if r.rejected]
        assert [(r.status, r.rejected) for r in rejected] == [
            (408, "The request head did not arrive in time")
        ]
        assert line < 99


async def test_an_idle_keep_alive_connection_is_not_a_slow_head() -> None:
    async with FakeReplicate(head_timeout=0.1) as fake, aiohttp.ClientSession() as session:
        url = fake.url("/v1/account")
        first = await session.get(url, headers=fake.auth_headers)
        assert first.status == 200
        await first.read()
        await asyncio.sleep(0.3)  # idle, no byte of a next head: no deadline running
        second = await session.get(url, headers=fake.auth_headers)
        assert second.status == 200
        await second.read()
        assert not [r for r in fake.requests if r.rejected]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("body_timeout", math.nan),
        ("body_timeout", math.inf),
        ("head_timeout", 0),
        ("max_file_size", math.nan),
        ("max_file_size", 1.5),
        ("max_recorded_requests", 0),
        ("max_recorded_requests", True),
        ("page_size", True),
        ("page_size", 10**9),
        ("page_size", 2.0),
        ("seed", 1.5),
        ("seed", -1),
        ("seed", "7"),
        ("token", ""),
        ("token", "has space"),
        ("token", "r8_\u00e9"),
        ("token", None),
        ("webhook_secret", "not-whsec"),
        ("webhook_secret", "whsec_***"),
        ("default_duration", -1.0),
        ("webhook_max_attempts", 0),
        ("max_json_depth", 10**6),
        ("create_burst", 0),
        ("require_auth", "yes"),
        ("files_signing_secret", ""),
    ],
)
def test_every_option_is_range_checked_at_construction(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        FakeReplicate(**{option: value})


def test_sensible_options_are_accepted() -> None:
    fake = FakeReplicate(seed=7, page_size=1, max_recorded_requests=1, head_timeout=0.5)
    assert fake.options.head_timeout == 0.5


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


async def test_listings_never_fail_on_stored_outputs() -> None:
    async with FakeReplicate() as fake, fake.client() as client:
        with pytest.raises(ValueError, match="output cannot be stored"):
            fake.script("complete", output=_nested(5_000))
        with pytest.raises(ValueError, match="output cannot be stored"):
            fake.script("complete", output={"x": math.nan})
        fake.script("complete", output=_nested(500))
        prediction = await client.predictions.create(version="fake/echo", input={"text": "x"})
        await client.predictions.wait(prediction.id)
        with pytest.raises(ValueError, match="output cannot be stored"):
            await fake.complete(prediction.id, output=_nested(5_000))
        page = await client.predictions.list()  # every listing answers 200
        (listed,) = [p for p in page.results if p.id == prediction.id]
        assert listed.output == _nested(500)


async def test_the_inspect_log_redacts_every_credential() -> None:
    secrets = {
        "authorization": "Bearer s1",
        "proxy-authorization": "Basic s2",
        "cookie": "session=s3",
        "x-api-key": "s4",
        "x-auth-token": "s5",
    }
    async with (
        FakeReplicate(inspect_endpoint=True, require_auth=False) as fake,
        aiohttp.ClientSession() as session,
    ):
        query = {"token": "s6", "api_key": "s7", "signature": "s8", "page": "2"}
        async with session.get(fake.url("/v1/account"), headers=secrets, params=query) as resp:
            assert resp.status == 200
        async with session.get(f"{fake.origin}/_fake/requests") as resp:
            text = await resp.text()
    for secret in ("s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"):
        assert secret not in text
    (entry,) = [e for e in json.loads(text) if e["path"] == "/v1/account"]
    assert entry["query"]["page"] == "2"
    assert entry["headers"]["proxy-authorization"] == "<redacted>"
    assert entry["query"]["token"] == "<redacted>"
    # In-process, the log keeps the values (tests assert what was sent).
    (recorded,) = fake.requests_matching("GET", "/v1/account")
    assert recorded.headers["cookie"] == "session=s3"


def test_verify_webhook_is_false_on_anything_malformed() -> None:
    secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    body = b'{"id": "p1"}'
    good = {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": sign_webhook(secret, "msg_1", "1700000000", body),
    }
    assert verify_webhook(secret, good, body) is True
    hostile: list[tuple[Any, Any, Any]] = [
        (secret, {**good, "webhook-signature": "v1,\u00e9\u00e9"}, body),
        (secret, {**good, "webhook-id": "\ud800"}, body),
        (secret, {**good, "webhook-signature": 5}, body),
        (secret, {"webhook-id": "msg_1"}, body),
        (secret, None, body),
        (secret, {1: 2}, body),
        (secret, good, "not bytes"),
        (secret, good, None),
        ("whsec_***", good, body),
        (None, good, body),
        (secret, {**good, "webhook-timestamp": None}, body),
    ]
    for args in hostile:
        assert verify_webhook(*args) is False, args
