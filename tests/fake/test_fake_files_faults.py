"""The Files API, and every kind of injected fault."""

from __future__ import annotations

import email.utils
import hashlib
import io
import time

import aiohttp
import pytest

from replicate_async.testing import FakeReplicate
from replicate_async.testing._body import file_too_large
from replicate_async.testing._util import parse_ts

from .conftest import Api


def form(content: bytes, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("content", io.BytesIO(content), filename="hello.txt", content_type="text/plain")
    for name, value in fields.items():
        ctype = "application/json" if name == "metadata" else "text/plain"
        data.add_field(name, value, content_type=ctype)
    return data


async def test_file_upload_list_get_download_delete(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    content = b"hello, files\n" * 100
    resp = await api.post("/v1/files", data=form(content, metadata='{"purpose": "test"}'))
    assert resp.status == 201, resp.text
    file = resp.json()
    assert file["name"] == "hello.txt"
    assert file["content_type"] == "text/plain"
    assert file["size"] == len(content)
    assert file["checksums"] == {
        "sha256": hashlib.sha256(content).hexdigest(),
        "md5": hashlib.md5(content).hexdigest(),
    }
    assert file["etag"] == file["checksums"]["md5"]
    assert file["metadata"] == {"purpose": "test"}
    day = parse_ts(file["expires_at"]) - parse_ts(file["created_at"])
    assert day == 24 * 3600 * 10**9
    assert file["urls"]["get"] == f"{replicate_fake.base_url}/files/{file['id']}"

    second = (
        await api.post("/v1/files", data=form(b"x", filename="a.bin", type="image/png"))
    ).json()
    assert (second["name"], second["content_type"], second["metadata"]) == (
        "a.bin",
        "image/png",
        {},
    )
    listed = (await api.get("/v1/files")).json()["results"]
    assert [f["id"] for f in listed] == [second["id"], file["id"]]
    assert (await api.get(file["urls"]["get"])).json() == file

    params = replicate_fake.signed_download_params(file["id"])
    resp = await api.get(f"/v1/files/{file['id']}/download", params=params, auth=False)
    assert resp.status == 200
    assert resp.content_type == "application/octet-stream"
    assert resp.body == content
    resp = await api.get(replicate_fake.signed_download_url(file["id"]), auth=False)
    assert resp.body == content
    bad = {**params, "signature": "AAAA"}
    assert (await api.get(f"/v1/files/{file['id']}/download", params=bad)).status == 404
    expired = replicate_fake.signed_download_params(file["id"], expires_in=-5)
    assert (await api.get(f"/v1/files/{file['id']}/download", params=expired)).status == 404

    resp = await api.request("DELETE", file["urls"]["get"])
    assert resp.status == 204
    assert resp.body == b""
    resp = await api.get(file["urls"]["get"])
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert resp.json() == {"detail": "File not found"}
    assert (await api.request("DELETE", file["urls"]["get"])).status == 404


async def test_file_upload_errors(api: Api) -> None:
    assert (await api.post("/v1/files", json={"content": "x"})).status == 400
    data = aiohttp.FormData()
    data.add_field("metadata", "{}", content_type="application/json")
    data.add_field("other", b"x", filename="x.bin")
    assert (await api.post("/v1/files", data=data)).status == 400
    assert (await api.post("/v1/files", data=form(b"x", metadata="[1]"))).status == 400


def test_413_body_matches_spec() -> None:
    body = file_too_large(100 * 1024 * 1024).body
    assert body == b'{"detail":"Files must be less than 100MB in size"}'


@pytest.mark.replicate_fake(max_file_size=1024)
async def test_file_too_large(api: Api, replicate_fake: FakeReplicate) -> None:
    resp = await api.post("/v1/files", data=form(b"x" * 2048))
    assert resp.status == 413
    assert resp.json() == {"detail": "Files must be less than 1024 bytes in size"}
    # Larger than the server will even read: refused before the handler runs.
    resp = await api.post("/v1/files", data=form(b"x" * (1024 * 1024 + 4096)))
    assert resp.status == 413
    assert (await api.get("/v1/files")).json()["results"] == []
    assert replicate_fake.count("POST", "/v1/files") == 2


async def test_status_fault_times_and_recording(api: Api, replicate_fake: FakeReplicate) -> None:
    fault = replicate_fake.faults.add("/v1/account", status=503, times=2)
    for _ in range(2):
        resp = await api.get("/v1/account")
        assert resp.status == 503
        assert resp.content_type == "application/problem+json"
        assert resp.json()["status"] == 503
    assert (await api.get("/v1/account")).status == 200
    assert fault.hits == 2
    assert fault.remaining == 0
    assert replicate_fake.count("GET", "/v1/account") == 3
    assert [r.fault for r in replicate_fake.requests] == [True, True, False]
    assert len(replicate_fake.faults) == 0


async def test_429_fault_with_retry_after(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.faults.add("/predictions", method="POST", status=429, retry_after=7)
    resp = await api.post("/v1/predictions", json={"version": "fake/echo", "input": {}})
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.json() == {
        "detail": "Request was throttled. Expected available in 7 seconds.",
        "status": 429,
        "retry_after": 7,
    }
    replicate_fake.faults.add("/v1/account", status=503, retry_after=3, retry_after_date=True)
    resp = await api.get("/v1/account")
    when = email.utils.parsedate_to_datetime(resp.headers["Retry-After"])
    assert abs(when.timestamp() - (time.time() + 3)) < 5


async def test_method_and_glob_matching(api: Api, replicate_fake: FakeReplicate) -> None:
    created = await api.create("fake/echo", {})
    replicate_fake.faults.add("/v1/predictions/*", method="GET", status=500, times=5)
    assert (await api.get(f"/v1/predictions/{created['id']}")).status == 500
    assert (await api.post(f"/v1/predictions/{created['id']}/cancel")).status == 200
    assert (await api.get("/v1/predictions")).status == 200  # the glob needs a segment
    replicate_fake.faults.clear()
    assert (await api.get(f"/v1/predictions/{created['id']}")).status == 200
    handle = replicate_fake.faults.add("/v1/hardware", status=502, times=3)
    handle.remove()
    assert (await api.get("/v1/hardware")).status == 200


async def test_delay_and_slow_body(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.faults.add("/v1/hardware", delay=0.05)
    started = time.perf_counter()
    resp = await api.get("/v1/hardware")
    assert time.perf_counter() - started >= 0.05
    assert resp.status == 200
    replicate_fake.faults.add("/v1/hardware", slow_body=0.02)
    started = time.perf_counter()
    slow = await api.get("/v1/hardware")
    assert time.perf_counter() - started >= 0.06
    assert slow.json() == resp.json()


async def test_drop_before_body_does_not_create(api: Api, replicate_fake: FakeReplicate) -> None:
    before = len((await api.get("/v1/predictions")).json()["results"])
    replicate_fake.faults.add("/v1/predictions", method="POST", drop_connection="before_body")
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.post("/v1/predictions", json={"version": "fake/echo", "input": {}})
    assert len((await api.get("/v1/predictions")).json()["results"]) == before
    (recorded,) = replicate_fake.requests_matching("POST", "/v1/predictions")
    assert recorded.fault


async def test_drop_after_body_did_create(api: Api, replicate_fake: FakeReplicate) -> None:
    before = len((await api.get("/v1/predictions")).json()["results"])
    replicate_fake.faults.add("/v1/predictions", method="POST", drop_connection="after_body")
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.post("/v1/predictions", json={"version": "fake/echo", "input": {"text": "x"}})
    results = (await api.get("/v1/predictions")).json()["results"]
    assert len(results) == before + 1
    assert results[0]["input"] == {"text": "x"}
    recorded = replicate_fake.requests_matching("POST", "/v1/predictions")[0]
    assert recorded.json() == {"version": "fake/echo", "input": {"text": "x"}}


async def test_truncated_body(
    api: Api, replicate_fake: FakeReplicate, http: aiohttp.ClientSession
) -> None:
    replicate_fake.faults.add("/v1/account", truncate_body=True)
    async with http.get(
        replicate_fake.url("/v1/account"), headers=replicate_fake.auth_headers
    ) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_broken_bodies(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.faults.add("/v1/account", html_error=True)
    resp = await api.get("/v1/account")
    assert (resp.status, resp.content_type, resp.body) == (
        502,
        "text/html",
        b"<html>bad gateway</html>",
    )

    replicate_fake.faults.add("/v1/account", invalid_json=True)
    resp = await api.get("/v1/account")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    with pytest.raises(ValueError):
        resp.json()

    replicate_fake.faults.add("/v1/account", empty_body=True)
    resp = await api.get("/v1/account")
    assert (resp.status, resp.body) == (200, b"")

    replicate_fake.faults.add("/v1/account", status=500, body={"detail": "Director error"})
    resp = await api.get("/v1/account")
    assert (resp.status, resp.json()) == (500, {"detail": "Director error"})

    replicate_fake.faults.add("/v1/account", headers={"x-should-retry": "false"})
    resp = await api.get("/v1/account")
    assert resp.status == 200
    assert resp.headers["x-should-retry"] == "false"
    assert resp.json()["username"] == "alice"


def test_fault_argument_checks() -> None:
    fake = FakeReplicate(seed=False)
    with pytest.raises(ValueError, match="times"):
        fake.faults.add("/v1/account", times=0)
    with pytest.raises(ValueError, match="drop_connection"):
        fake.faults.add("/v1/account", drop_connection="sometimes")  # type: ignore[arg-type]
