"""The conventions users of other API SDKs expect, over real sockets against the fake:
``to_dict``/``to_json``, ``request_id`` on errors, ``default_headers``/``default_query``,
``client.get/post/patch/delete``, ``REPLICATE_ASYNC_LOG`` and proxies from the environment."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime

import pytest

from replicate_async import (
    Account,
    APIConnectionError,
    APIResponseValidationError,
    AsyncReplicate,
    InvalidArgumentError,
    NotFoundError,
    Prediction,
)
from replicate_async.testing import FakeReplicate

from ..helpers import tcp_server

# -- to_dict / to_json -----------------------------------------------------------------


async def test_to_dict_gives_the_api_json_and_python_values(fake: FakeReplicate) -> None:
    async with fake.client() as client:
        created = await client.predictions.create(version="fake/tokens", input={"prompt": "a"})
    sent = fake.prediction(created.id)
    assert sent is not None
    api = created.to_dict()
    # Every field the server sent comes back under its API name, timestamps as strings.
    assert set(api) >= set(created.raw)
    assert api["id"] == created.id
    assert api["input"] == {"prompt": "a"}
    assert isinstance(api["created_at"], str)
    assert api["created_at"].endswith("Z")
    assert api["urls"] == created.raw["urls"]
    python = created.to_dict(mode="python")
    assert isinstance(python["created_at"], datetime)
    assert python["created_at"] == created.created_at
    assert json.loads(created.to_json()) == api
    assert json.loads(created.to_json(indent=2)) == api


async def test_to_dict_exclude_unset_keeps_only_what_the_response_carried(
    fake: FakeReplicate,
) -> None:
    async with fake.client() as client:
        model = await client.models.get("fake/tokens")
    keys = set(model.to_dict(exclude_unset=True))
    assert keys == set(model.raw) & set(model.to_dict(mode="python"))
    assert "owner" in keys


def test_to_dict_on_objects_built_by_hand() -> None:
    prediction = Prediction(id="p1", status="starting", input={"x": 1})
    assert prediction.to_dict(exclude_unset=True) == {
        "id": "p1",
        "status": "starting",
        "input": {"x": 1},
    }
    assert prediction.to_dict()["output"] is None
    with pytest.raises(ValueError, match="mode"):
        prediction.to_dict(mode="yaml")  # type: ignore[arg-type]


def test_unknown_fields_travel_in_api_mode_only() -> None:
    from replicate_async._converter import structure

    account = structure({"type": "user", "username": "ada", "new_field": [1]}, Account)
    assert account.to_dict()["new_field"] == [1]
    assert "new_field" not in account.to_dict(mode="python")


# -- request_id on errors -----------------------------------------------------------------


async def test_status_errors_carry_the_request_id(fake: FakeReplicate) -> None:
    fake.faults.add("/v1/predictions/*", method="GET", status=404, headers={"CF-Ray": "8a1-IAD"})
    async with fake.client() as client:
        with pytest.raises(NotFoundError) as info:
            await client.predictions.get("nothere")
        assert info.value.request_id == "8a1-IAD"
        assert "8a1-IAD" in str(info.value)
        assert "8a1-IAD" in repr(info.value)
        # A gateway's X-Request-Id is preferred to Cloudflare's ray id.
        fake.faults.add(
            "/v1/predictions/*",
            method="GET",
            status=404,
            headers={"CF-Ray": "8a1-IAD", "X-Request-Id": "req-7"},
        )
        with pytest.raises(NotFoundError) as info:
            await client.predictions.get("nothere")
        assert info.value.request_id == "req-7"
        # None when the response has no id.
        with pytest.raises(NotFoundError) as info:
            await client.predictions.get("nothere")
        assert info.value.request_id is None


# -- default headers and query ------------------------------------------------------------


async def test_default_headers_and_query_go_on_every_request(fake: FakeReplicate) -> None:
    client = fake.client(default_headers={"X-Team": "vision"}, default_query={"trace": "1"})
    async with client:
        await client.models.get("fake/tokens", extra_headers={"X-Call": "yes"})
        tuned = client.with_options(default_headers={"X-Team": "audio"})
        await tuned.account.get()
    first, second = fake.requests[-2:]
    assert (first.headers["x-team"], first.headers["x-call"], first.query) == (
        "vision",
        "yes",
        {"trace": "1"},
    )
    assert (second.headers["x-team"], second.query) == ("audio", {"trace": "1"})
    assert second.headers["authorization"] == f"Bearer {fake.token}"


async def test_default_headers_are_checked_like_extra_headers(fake: FakeReplicate) -> None:
    with pytest.raises(ValueError, match="control character"):
        fake.client(default_headers={"X-Bad": "a\r\nInjected: 1"})
    with pytest.raises(TypeError):
        fake.client(default_query={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgumentError, match="Authorization is only ever the client's token"):
        fake.client(default_headers={"Authorization": "Bearer someone-else"})
    assert fake.requests == []  # refused before anything was sent


# -- client.get/post/patch/delete --------------------------------------------------------


async def test_get_and_post_any_endpoint(fake: FakeReplicate) -> None:
    async with fake.client() as client:
        account = await client.get("account", cast_to=Account)
        assert isinstance(account, Account)
        assert account.username == fake.account["username"]
        versions = await client.get("/models/fake/tokens/versions", query={"limit": "1"})
        assert isinstance(versions, dict)
        assert versions["results"]
        created = await client.post(
            "predictions",
            body={"version": "fake/tokens", "input": {"prompt": "hi"}},
            cast_to=Prediction,
            extra_headers={"Prefer": "wait=1"},
        )
        assert isinstance(created, Prediction)
        assert created.input == {"prompt": "hi"}
        text = await client.get(f"predictions/{created.id}", cast_to=str)
        assert json.loads(text)["id"] == created.id
        canceled = await client.post(f"predictions/{created.id}/cancel", cast_to=Prediction)
        assert canceled.id == created.id
    sent = [(r.method, r.path, r.query) for r in fake.requests]
    assert sent == [
        ("GET", "/v1/account", {}),
        ("GET", "/v1/models/fake/tokens/versions", {"limit": "1"}),
        ("POST", "/v1/predictions", {}),
        ("GET", f"/v1/predictions/{created.id}", {}),
        ("POST", f"/v1/predictions/{created.id}/cancel", {}),
    ]
    post = fake.requests[2]
    assert json.loads(post.body) == {"version": "fake/tokens", "input": {"prompt": "hi"}}
    assert post.headers["content-type"] == "application/json"
    assert post.headers["prefer"] == "wait=1"


async def test_patch_and_delete(fake: FakeReplicate) -> None:
    async with fake.client() as client:
        await client.post(
            "deployments",
            body={
                "name": "d1",
                "model": "fake/tokens",
                "version": fake.latest_version_id("fake/tokens"),
                "hardware": "cpu",
                "min_instances": 0,
                "max_instances": 1,
            },
        )
        owner = fake.account["username"]
        patched = await client.patch(f"deployments/{owner}/d1", body={"max_instances": 3})
        assert patched["current_release"]["configuration"]["max_instances"] == 3
        assert await client.delete(f"deployments/{owner}/d1") is None
    assert [(r.method, r.path) for r in fake.requests[-2:]] == [
        ("PATCH", f"/v1/deployments/{owner}/d1"),
        ("DELETE", f"/v1/deployments/{owner}/d1"),
    ]


@pytest.mark.parametrize(
    "path",
    [
        "https://evil.example/v1/account",
        "//evil.example/account",
        "../account",
        "models/../../x",
        "account?x=1",
        "",
        "/",
        "models/a%2F..",
    ],
)
async def test_paths_never_leave_the_api_base(fake: FakeReplicate, path: str) -> None:
    async with fake.client() as client:
        with pytest.raises(InvalidArgumentError):
            await client.get(path)
    assert fake.requests == []


async def test_bad_arguments_fail_before_sending(fake: FakeReplicate) -> None:
    async with fake.client() as client:
        with pytest.raises(TypeError, match="body"):
            await client.post("predictions", body="text")
        with pytest.raises(TypeError, match="cast_to"):
            await client.get("account", cast_to=42)
        with pytest.raises(APIResponseValidationError):
            await client.get("account", cast_to=Prediction)  # the shape is wrong
    assert len(fake.requests) == 1


async def test_a_post_is_not_resent_after_a_5xx(fake: FakeReplicate) -> None:
    fake.faults.add("/v1/predictions", method="POST", status=503)
    async with fake.client() as client:
        with pytest.raises(Exception, match="503"):
            await client.post("predictions", body={"version": "fake/tokens", "input": {}})
    assert fake.count("POST", "/v1/predictions") == 1


# -- REPLICATE_ASYNC_LOG -----------------------------------------------------------------


@pytest.fixture
def sdk_logger() -> AsyncIterator[logging.Logger]:
    logger = logging.getLogger("replicate_async")
    level, handlers = logger.level, list(logger.handlers)
    yield logger
    logger.setLevel(level)
    for handler in logger.handlers[:]:
        if handler not in handlers:
            logger.removeHandler(handler)


@pytest.mark.parametrize("level", ["debug", "info", "DEBUG"])
async def test_log_switch_never_shows_the_token(
    fake: FakeReplicate,
    level: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sdk_logger: logging.Logger,
) -> None:
    monkeypatch.setenv("REPLICATE_ASYNC_LOG", level)
    fake.faults.add("/v1/account", status=500, times=1)
    async with fake.client(max_retries=1) as client:
        await client.account.get()
        await client.get("account", extra_headers={"X-Note": f"token {fake.token}"})
    err = capsys.readouterr().err
    assert "HTTP GET" in err
    assert "/v1/account -> 500" in err
    assert "/v1/account -> 200" in err
    assert fake.token not in err
    if level.lower() == "debug":
        assert "request GET" in err
        assert "<redacted>" in err
        assert "retrying GET" in err
    else:
        assert "request GET" not in err


async def test_no_log_switch_no_output(
    fake: FakeReplicate,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sdk_logger: logging.Logger,
) -> None:
    monkeypatch.delenv("REPLICATE_ASYNC_LOG", raising=False)
    async with fake.client() as client:
        await client.account.get()
    assert capsys.readouterr().err == ""


# -- proxies from the environment ----------------------------------------------------------


class Proxy:
    """A forward HTTP proxy on 127.0.0.1 (absolute-form requests), recording what it saw."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.tunneled: list[bytes] = []

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            method, target, _ = lines[0].split(" ")
            headers = dict(line.split(": ", 1) for line in lines[1:] if line)
            self.seen.append((f"{method} {target}", headers))
            if method == "CONNECT":  # a tunnel: what goes through it is TLS, never seen
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                self.tunneled.append(await reader.read(65536))
                return
            body = await reader.readexactly(int(headers.get("Content-Length", "0")))
            rest = target.split("://", 1)[1]
            hostport, path = rest.split("/", 1)
            host, port = hostport.split(":")
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            headers["Connection"] = "close"
            request = f"{method} /{path} HTTP/1.1\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "proxy-connection"
            )
            up_writer.write(request.encode() + b"\r\n" + body)
            await up_writer.drain()
            writer.write(await up_reader.read())
            await writer.drain()
            up_writer.close()
        finally:
            writer.close()


async def test_proxies_come_from_the_environment(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = Proxy()
    async with tcp_server(proxy.serve) as port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with fake.client() as client:
            account = await client.account.get()
        assert account.username == fake.account["username"]
        assert [line for line, _ in proxy.seen] == [f"GET {fake.base_url}/account"]
        # Plain http goes through the proxy in absolute form, so the proxy sees the request
        # whole (as documented); https goes through a CONNECT tunnel instead.
        assert proxy.seen[0][1]["Authorization"] == f"Bearer {fake.token}"

        # trust_env=False: the environment is ignored.
        async with fake.client(trust_env=False) as client:
            await client.account.get()
        assert len(proxy.seen) == 1

        # NO_PROXY names the API host: the request goes direct.
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with fake.client() as client:
            await client.account.get()
        assert len(proxy.seen) == 1
    assert fake.count("GET", "/v1/account") == 3


async def test_https_goes_through_a_connect_tunnel(
    fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy sees ``CONNECT host:port`` and encrypted bytes: never the token. (The
    fake speaks plain HTTP, so the TLS handshake through the tunnel then fails.)"""
    proxy = Proxy()
    async with tcp_server(proxy.serve) as port:
        monkeypatch.setenv("HTTPS_PROXY", f"http://proxyuser:s3cret@127.0.0.1:{port}")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        base = f"https://127.0.0.1:{fake.port}/v1"
        async with AsyncReplicate(api_token=fake.token, base_url=base, max_retries=0) as client:
            with pytest.raises(APIConnectionError):
                await client.account.get()
    ((line, headers),) = proxy.seen
    assert line == f"CONNECT 127.0.0.1:{fake.port}"
    assert "Authorization" not in headers
    assert (
        headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"proxyuser:s3cret").decode()
    )
    assert all(fake.token.encode() not in chunk for chunk in proxy.tunneled)
    assert fake.requests == [] or all(r.path != "/v1/account" for r in fake.requests)


def test_trust_env_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="trust_env"):
        AsyncReplicate(api_token="r8_x", trust_env="yes")  # type: ignore[arg-type]


def test_to_dict_needs_nothing_but_the_model_import() -> None:
    """The package imports lazily: a model alone, without the client, can serialise."""
    import subprocess
    import sys

    code = (
        "from replicate_async.models import Prediction\n"
        "print(Prediction(id='p', status='starting').to_json(exclude_unset=True))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"id": "p", "status": "starting"}
