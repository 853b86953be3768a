"""Files in (inline or uploaded, never read on the loop) and files out (FileOutput)."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from replicate_async import AsyncReplicate, AuthenticationError, FileOutput
from replicate_async.testing import FakeReplicate
from tests.helpers import eventually

from .conftest import serve

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LARGE = 256 * 1024 + 1  # one byte over the inline threshold
ECHO_CREATE = "/v1/models/fake/echo/predictions"


def data_url_bytes(url: str) -> bytes:
    header, _, payload = url.partition(",")
    assert header.startswith("data:"), header
    assert header.endswith(";base64"), header
    return base64.b64decode(payload)


class LoopCheckedFile(io.RawIOBase):
    """A seekable in-memory binary file that records which thread reads it."""

    def __init__(self, data: bytes, loop_thread: int, name: str = "") -> None:
        super().__init__()
        self._inner = io.BytesIO(data)
        self._loop_thread = loop_thread
        self.name = name
        self.reads_on_loop = 0
        self.reads_elsewhere = 0

    def _note(self) -> None:
        if threading.get_ident() == self._loop_thread:
            self.reads_on_loop += 1
        else:
            self.reads_elsewhere += 1

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def readinto(self, buffer: Any) -> int:
        self._note()
        return self._inner.readinto(buffer)

    def read(self, size: int = -1) -> bytes:
        self._note()
        return self._inner.read(size)


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)
        yield part


async def test_nested_files_are_inlined_or_uploaded(
    replicate_fake: FakeReplicate, client: AsyncReplicate, tmp_path: Path
) -> None:
    """Paths, bytes, file objects and async iterables anywhere in the input: small ones
    become ``data:`` URLs in the create's body, large ones are uploaded (multipart) first
    and the upload's ``urls.get`` is what the prediction receives."""
    small_path = tmp_path / "note.txt"
    small_path.write_text("hello")
    big_path = tmp_path / "big.bin"
    big_path.write_bytes(b"p" * LARGE)
    big_bytes = b"b" * LARGE
    inputs = {
        "doc": small_path,
        "nested": {
            "list": [b"raw bytes", io.BytesIO(b"file object"), big_path],
            "deeper": {"blob": big_bytes, "stream": chunks(b"async ", b"chunks")},
        },
        "plain": "strings are never files: /etc/passwd",
    }
    output = await client.run("fake/echo", input=inputs)

    create = replicate_fake.requests_matching("POST", ECHO_CREATE)[0]
    sent = create.json()["input"]
    assert output == sent  # fake/echo returns exactly what the model received
    assert sent["plain"] == "strings are never files: /etc/passwd"
    assert sent["doc"] == "data:text/plain;base64," + base64.b64encode(b"hello").decode()
    assert data_url_bytes(sent["nested"]["list"][0]) == b"raw bytes"
    assert data_url_bytes(sent["nested"]["list"][1]) == b"file object"
    uploaded = {
        "big path": sent["nested"]["list"][2],
        "big bytes": sent["nested"]["deeper"]["blob"],
        "async iterable": sent["nested"]["deeper"]["stream"],  # size unknown: uploaded
    }
    expected = {"big path": b"p" * LARGE, "big bytes": big_bytes, "async iterable": b"async chunks"}
    files_prefix = f"{replicate_fake.base_url}/files/"
    uploads = replicate_fake.requests_matching("POST", "/v1/files")
    assert len(uploads) == 3
    assert all(r.headers["content-type"].startswith("multipart/form-data") for r in uploads)
    assert all(r.time <= create.time for r in uploads)  # uploaded before the create
    for what, url in uploaded.items():
        assert url.startswith(files_prefix), (what, url)
        file = await client.files.get(url.removeprefix(files_prefix))
        assert file.size == len(expected[what]), what
        assert file.urls is not None
        assert file.urls["get"] == url
    big_upload = next(r for r in uploads if b'filename="big.bin"' in r.body)
    assert b"p" * LARGE in big_upload.body


async def test_uploads_run_concurrently(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """Four large files, each upload held 1 s by the server: all four arrive at the
    server before any is answered (sequential uploads would take 4 s)."""
    replicate_fake.faults.add("/v1/files", method="POST", delay=1.0, times=4)
    files = {f"f{i}": bytes([65 + i]) * LARGE for i in range(4)}
    task = asyncio.ensure_future(client.run("fake/echo", input=files))
    await eventually(lambda: replicate_fake.count("POST", "/v1/files") == 4, timeout=0.9)
    output = await asyncio.wait_for(task, 5)
    assert sorted(output) == sorted(files)
    assert all(url.startswith(replicate_fake.base_url + "/files/") for url in output.values())


@pytest.mark.parametrize("size", [100, LARGE], ids=["inlined", "uploaded"])
async def test_file_objects_are_never_read_on_the_event_loop(
    replicate_fake: FakeReplicate, client: AsyncReplicate, size: int
) -> None:
    file = LoopCheckedFile(b"z" * size, threading.get_ident(), name="input.bin")
    output = await client.run("fake/echo", input={"file": file})
    assert file.reads_elsewhere > 0
    assert file.reads_on_loop == 0
    if size == LARGE:
        assert output["file"].startswith(replicate_fake.base_url + "/files/")
    else:
        assert data_url_bytes(output["file"]) == b"z" * size


@pytest.mark.parametrize("size", [100, LARGE], ids=["inlined", "uploaded"])
async def test_paths_are_never_read_on_the_event_loop(
    client: AsyncReplicate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    loop_thread = threading.get_ident()
    opened: list[LoopCheckedFile] = []
    read_on: list[int] = []
    content = b"q" * size
    path = tmp_path / "input.bin"
    path.write_bytes(content)

    def read_bytes(self: Path) -> bytes:
        read_on.append(threading.get_ident())
        return content

    def open_checked(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        assert mode == "rb", mode
        read_on.append(threading.get_ident())
        file = LoopCheckedFile(content, loop_thread, name=str(self))
        opened.append(file)
        return file

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    monkeypatch.setattr(Path, "open", open_checked)
    await client.run("fake/echo", input={"file": path})
    assert read_on
    assert loop_thread not in read_on
    assert all(f.reads_on_loop == 0 and f.reads_elsewhere > 0 for f in opened)
    assert bool(opened) == (size == LARGE)  # a small file is inlined from read_bytes()
    assert all(f.closed for f in opened)  # every handle closed by the thread that opened it


# -- files out ----------------------------------------------------------------------------


async def test_image_outputs_as_file_outputs(
    replicate_fake: FakeReplicate, client: AsyncReplicate, tmp_path: Path
) -> None:
    """Sync mode returns inline ``data:`` images: read, iterated and saved locally."""
    output = await client.run(
        "fake/image", input={"prompt": "a corgi", "num_outputs": 2}, use_file_output=True
    )
    assert len(output) == 2
    assert all(isinstance(f, FileOutput) for f in output)
    assert output[0].url.startswith("data:image/png;base64,")
    before = len(replicate_fake.requests)
    assert (await output[0].read()).startswith(PNG_MAGIC)
    assert b"".join([chunk async for chunk in output[1]]).startswith(PNG_MAGIC)
    saved = await output[0].save(tmp_path / "out.png")
    assert saved.read_bytes().startswith(PNG_MAGIC)
    assert len(replicate_fake.requests) == before  # decoded locally: no request


async def test_delivery_urls_on_the_api_host_are_downloaded_with_the_token(
    replicate_fake: FakeReplicate, client: AsyncReplicate, tmp_path: Path
) -> None:
    """Without the hold, outputs are URLs (on the fake's own host, i.e. the API host)."""
    output = await client.run("fake/image", input={"prompt": "x"}, use_file_output=True, wait=False)
    (image,) = output
    assert image.url.startswith(f"{replicate_fake.origin}/delivery/")
    assert (await image.read()).startswith(PNG_MAGIC)
    streamed = b"".join([chunk async for chunk in image])
    saved = (await image.save(tmp_path / "x.png")).read_bytes()
    assert streamed == saved == await image.read()
    downloads = replicate_fake.requests_matching("GET", "/delivery/*")
    assert len(downloads) == 4
    assert all(r.headers["authorization"] == f"Bearer {replicate_fake.token}" for r in downloads)
    assert replicate_fake.count("GET", "/v1/predictions/*") >= 1  # no hold: it polled


@pytest.fixture
async def cdn() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A file host on another port (another origin): ``/file.png``, and a redirect to it."""
    seen: list[dict[str, str]] = []

    async def file(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=PNG_MAGIC + b"cdn bytes" * 10_000, content_type="image/png")

    async def hop(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        raise web.HTTPFound("/file.png")

    app = web.Application()
    app.router.add_get("/file.png", file)
    app.router.add_get("/hop", hop)
    async with serve(app) as origin:
        yield origin, seen


async def test_downloads_from_another_host_never_carry_the_token(
    client: AsyncReplicate, cdn: tuple[str, list[dict[str, str]]], tmp_path: Path
) -> None:
    origin, seen = cdn
    for path in ("/file.png", "/hop"):  # direct, and through a redirect
        output = client.file_output(origin + path)
        data = await output.read()
        assert data.startswith(PNG_MAGIC)
        assert data.endswith(b"cdn bytes")
        assert b"".join([chunk async for chunk in output]) == data
        assert (await output.save(tmp_path / "cdn.png")).read_bytes() == data
    assert len(seen) == 9  # 3 downloads direct, 3 x (hop + file) via the redirect
    assert all("Authorization" not in headers for headers in seen), seen


async def test_api_host_redirect_to_another_host_drops_the_token(
    replicate_fake: FakeReplicate,
    client: AsyncReplicate,
    cdn: tuple[str, list[dict[str, str]]],
) -> None:
    """A delivery URL on the API host that redirects to a CDN: the token goes to the API
    host only, and the bytes are the CDN's (not the redirect's body)."""
    origin, seen = cdn
    replicate_fake.faults.add(
        "/delivery/*", method="GET", status=302, headers={"Location": origin + "/file.png"}
    )
    output = client.file_output(replicate_fake.origin + "/delivery/abc/out-0.png")
    data = await output.read()
    assert data.startswith(PNG_MAGIC)
    assert data.endswith(b"cdn bytes")
    (hop,) = replicate_fake.requests_matching("GET", "/delivery/*")
    assert hop.headers["authorization"] == f"Bearer {replicate_fake.token}"
    assert len(seen) == 1
    assert "Authorization" not in seen[0]


async def test_a_file_host_redirecting_to_the_api_never_gets_the_token_sent(
    replicate_fake: FakeReplicate, client: AsyncReplicate
) -> None:
    """A URL from a model's output must not make the SDK send an authenticated request
    to wherever that host points (here: the API's account endpoint)."""

    async def to_api(request: web.Request) -> web.Response:
        raise web.HTTPFound(replicate_fake.url("/v1/account"))

    app = web.Application()
    app.router.add_get("/innocent.png", to_api)
    async with serve(app) as origin:
        output = client.file_output(origin + "/innocent.png")
        with pytest.raises(AuthenticationError):
            await output.read()
        with pytest.raises(AuthenticationError):
            _ = [chunk async for chunk in output]
    at_api = replicate_fake.requests_matching("GET", "/v1/account")
    assert len(at_api) == 2
    assert [r.headers.get("authorization") for r in at_api] == [None, None]
