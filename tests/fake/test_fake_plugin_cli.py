"""The pytest fixture, ``serve()``, the CLI entry point, and small public helpers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp
import pytest

from replicate_async.testing import DEFAULT_TOKEN, FakeReplicate, ManualClock, serve

from .conftest import Api


async def test_fixture_is_started(replicate_fake: FakeReplicate) -> None:
    assert replicate_fake.base_url.startswith("http://127.0.0.1:")
    assert replicate_fake.base_url.endswith("/v1")
    assert replicate_fake.base_url == f"http://127.0.0.1:{replicate_fake.port}/v1"
    assert replicate_fake.token == DEFAULT_TOKEN == "r8_fake_token_for_tests"


@pytest.mark.replicate_fake(page_size=1, token="r8_other")
async def test_fixture_marker_options(api: Api, replicate_fake: FakeReplicate) -> None:
    assert replicate_fake.options.page_size == 1
    page = (await api.get("/v1/collections")).json()
    assert len(page["results"]) == 1
    assert (
        await api.get("/v1/account", auth=False, headers={"Authorization": "Bearer r8_other"})
    ).status == 200


async def test_client_helper(replicate_fake: FakeReplicate) -> None:
    async with replicate_fake.client(max_retries=0) as client:
        assert type(client).__name__ == "AsyncReplicate"
        assert client.base_url == replicate_fake.base_url


async def test_start_stop_are_idempotent_and_ports_differ() -> None:
    first, second = FakeReplicate(), FakeReplicate()
    with pytest.raises(RuntimeError):
        _ = first.base_url
    await first.start()
    await first.start()
    await second.start()
    try:
        assert first.port != second.port
    finally:
        await first.stop()
        await second.stop()
        await first.stop()


async def test_stop_with_open_stream_and_running_predictions() -> None:
    clock = ManualClock()
    fake = FakeReplicate(clock=clock)
    await fake.start()
    async with aiohttp.ClientSession() as session:
        api = Api(fake, session)
        created = await api.create("fake/slow", {})
        waiting = asyncio.ensure_future(
            api.post(
                "/v1/predictions",
                json={"version": "fake/slow", "input": {}},
                headers={"Prefer": "wait"},
            )
        )
        async with session.get(created["urls"]["stream"]) as resp:
            await clock.wait_for_sleepers(3)
            await asyncio.wait_for(fake.stop(), 5)
            await resp.read()
        resp2 = await waiting
        assert resp2.status == 201
        assert resp2.json()["status"] == "processing"


async def test_request_log_helpers(api: Api, replicate_fake: FakeReplicate) -> None:
    await api.get("/v1/account", headers={"X-Custom": "1"})
    await api.get("/v1/models?sort_direction=asc")
    (req,) = replicate_fake.requests_matching("GET", "/v1/account")
    assert req.headers["x-custom"] == "1"
    assert req.headers["authorization"] == f"Bearer {replicate_fake.token}"
    assert req.body == b""
    assert req.time > 0
    assert replicate_fake.count("GET", "/models") == 1
    assert replicate_fake.requests_matching(path="/v1/*")[1].query == {"sort_direction": "asc"}
    assert replicate_fake.count() == 2
    replicate_fake.clear_requests()
    assert replicate_fake.count() == 0


async def test_request_log_limit() -> None:
    async with FakeReplicate(max_recorded_requests=5) as fake, aiohttp.ClientSession() as s:
        api = Api(fake, s)
        for _ in range(30):
            await api.get("/v1/hardware")
        assert 5 <= len(fake.requests) <= 10
    async with FakeReplicate(record_requests=False) as fake, aiohttp.ClientSession() as s:
        await Api(fake, s).get("/v1/hardware")
        assert fake.requests == []


async def test_serve_function() -> None:
    lines: list[str] = []
    ready = asyncio.Event()
    stop = asyncio.Event()

    def announce(line: str) -> None:
        lines.append(line)
        if line.startswith("REPLICATE_API_TOKEN="):
            ready.set()

    task = asyncio.ensure_future(
        serve(models=3, stop=stop, handle_signals=False, announce=announce, page_size=2)
    )
    await asyncio.wait_for(ready.wait(), 5)
    base = next(line.partition("=")[2] for line in lines if line.startswith("REPLICATE_BASE_URL="))
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
        async with session.get(f"{base}/models/synthetic/model-000002", headers=headers) as resp:
            assert resp.status == 200
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_cli_serves_until_interrupted() -> None:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "replicate_async.testing", "--port", "0", "--models", "2",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        lines = []
        for _ in range(3):
            raw = await asyncio.wait_for(proc.stdout.readline(), 20)
            lines.append(raw.decode().strip())
        assert lines[0].startswith("Fake Replicate API listening on http://127.0.0.1:")
        base = lines[1].removeprefix("REPLICATE_BASE_URL=")
        assert lines[2] == f"REPLICATE_API_TOKEN={DEFAULT_TOKEN}"
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Token {DEFAULT_TOKEN}"}
            async with session.get(
                f"{base}/models/synthetic/model-000001", headers=headers
            ) as resp:
                assert resp.status == 200
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_unseeded_server_is_empty() -> None:
    async with FakeReplicate(seed=False) as fake, aiohttp.ClientSession() as s:
        api = Api(fake, s)
        assert (await api.get("/v1/models")).json()["results"] == []
        assert (await api.get("/v1/hardware")).json() == []


def test_plugin_without_pytest_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    from replicate_async.testing import pytest_plugin

    monkeypatch.setitem(sys.modules, "pytest_asyncio", None)
    assert pytest_plugin._build_fixture("replicate_fake", pytest_plugin._fake) is not None
    with pytest.raises(pytest.UsageError, match="pytest-asyncio"):
        pytest_plugin._missing_asyncio(None)  # type: ignore[arg-type]
