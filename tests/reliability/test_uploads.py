"""Files in and out: names sent as given, bytes uploaded without a second copy, bad
paths refused clearly, and ``data:`` URLs decoded per RFC 2397 (typed errors only).
"""

from __future__ import annotations

import hashlib
import tracemalloc
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from replicate_async import AsyncReplicate, DataURLError, InvalidArgumentError
from replicate_async._checks.datauri import decode_data_url
from replicate_async._workflows.file_outputs import FileOutput
from replicate_async.testing import FakeReplicate

# -- filenames on the wire ------------------------------------------------------------------

NAMES = [
    "my file.txt",
    "100%.txt",
    'quote"d.txt',
    "back\\slash.txt",
    "semi;colon=x.txt",
    "café.png",
    "日本語.bin",
    "emoji 🎉.gif",
    "a" * 255,
]


@pytest.mark.parametrize("name", NAMES, ids=lambda n: n[:20])
async def test_filenames_are_stored_exactly_as_given(
    replicate_fake: FakeReplicate, name: str
) -> None:
    """``my file.txt`` used to be stored as ``my%20file.txt`` (percent-encoded on the wire)."""
    async with replicate_fake.client() as client:
        created = await client.files.create(b"data", filename=name)
        assert created.name == name
        again = await client.files.get(created.id)
    assert again.name == name
    [upload] = replicate_fake.requests_matching("POST", "/v1/files")
    assert upload.status == 201


def _parts(body: bytes, content_type: str) -> dict[str, tuple[Message, bytes]]:
    """The multipart parts by field name: their headers and their data."""
    boundary = content_type.split("boundary=", 1)[1].strip('"')
    parts: dict[str, tuple[Message, bytes]] = {}
    for section in body.split(b"--" + boundary.encode())[1:-1]:
        head, _, data = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        message = Message()
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            message[key] = value.strip()
        name = message.get_param("name", header="content-disposition")
        assert isinstance(name, str)
        parts[name] = (message, data.removesuffix(b"\r\n"))
    return parts


@pytest.mark.parametrize(
    ("name", "plain", "extended"),
    [
        ("my file.txt", "my file.txt", None),
        ('a"b\\c.txt', 'a"b\\c.txt', None),
        ("café.png", "caf_.png", "UTF-8''caf%C3%A9.png"),
    ],
)
async def test_the_file_part_follows_rfc_7578(name: str, plain: str, extended: str | None) -> None:
    """``filename`` is a quoted string (no percent-encoding); non-ASCII names add
    ``filename*`` (RFC 5987), which multipart parsers prefer."""
    seen: list[tuple[bytes, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((await request.read(), request.headers["Content-Type"]))
        return web.json_response({"id": "f", "urls": {"get": "http://x/f"}}, status=201)

    async with _server(record) as base, AsyncReplicate(api_token="t", base_url=base) as client:
        await client.files.create(b"x", filename=name)
    parts = _parts(*seen[0])
    part = parts["content"][0]
    raw = part["content-disposition"]
    assert "%20" not in raw
    assert part.get_param("filename", header="content-disposition") == plain
    if extended is None:
        assert "filename*" not in raw
    else:
        assert f"filename*={extended}" in raw
    # ...and the API's own ``filename`` field carries the exact name as UTF-8 text.
    field, data = parts["filename"]
    assert field["content-type"] == "text/plain; charset=utf-8"
    assert data == name.encode()


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"filename": ""}, InvalidArgumentError, "empty"),
        ({"filename": "a\r\nb"}, InvalidArgumentError, "control"),
        ({"filename": "a\x00b"}, InvalidArgumentError, "control"),
        ({"filename": "\udc80"}, InvalidArgumentError, "surrogate"),
        ({"filename": "é" * 128}, InvalidArgumentError, "255"),
        ({"filename": 5}, TypeError, "filename"),
        ({"content_type": "text/plain\r\nX-Evil: 1"}, InvalidArgumentError, "content_type"),
        ({"content_type": 5}, TypeError, "content_type"),
        ({"metadata": {"x": float("nan")}}, InvalidArgumentError, "metadata"),
        ({"metadata": [1]}, TypeError, "metadata"),
    ],
    ids=lambda v: repr(v)[:30],
)
async def test_bad_upload_arguments_are_refused_before_sending(
    replicate_fake: FakeReplicate, kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    async with replicate_fake.client() as client:
        with pytest.raises(error, match=words):
            await client.files.create(b"x", **kwargs)
    assert replicate_fake.requests == []


async def test_bad_paths_are_clear_errors_not_a_file_not_found_for_dot(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    """``files.create("")`` raised ``FileNotFoundError("no such file: .")``."""
    async with replicate_fake.client() as client:
        with pytest.raises(InvalidArgumentError, match="empty path"):
            await client.files.create("")
        with pytest.raises(InvalidArgumentError, match="path"):
            await client.files.create("a\x00b")
        with pytest.raises(FileNotFoundError, match=r"missing\.txt"):
            await client.files.create(str(tmp_path / "missing.txt"))
        with pytest.raises(FileNotFoundError, match="not a regular file"):
            await client.files.create(tmp_path)
        with pytest.raises(TypeError, match="content"):
            await client.files.create(12)  # type: ignore[arg-type]
    assert replicate_fake.requests == []


async def test_bytes_like_content_uploads_exactly(replicate_fake: FakeReplicate) -> None:
    data = bytes(range(256)) * 1000
    grid = memoryview(bytearray(data)).cast("B", (1000, 256))
    async with replicate_fake.client() as client:
        for content in (data, bytearray(data), memoryview(data), grid, memoryview(data)[::2]):
            created = await client.files.create(content)
            expected = bytes(content) if not isinstance(content, memoryview) else content.tobytes()
            assert created.size == len(expected)
            assert (created.checksums or {}).get("sha256") == hashlib.sha256(expected).hexdigest()


# -- no second copy of an uploaded buffer ---------------------------------------------------


class _Sink:
    """A server that reads an upload in chunks and keeps none of it."""

    def __init__(self) -> None:
        self.received = 0

    async def handle(self, request: web.Request) -> web.Response:
        async for chunk in request.content.iter_any():
            self.received += len(chunk)
        return web.json_response({"id": "f", "urls": {"get": "http://x/f"}}, status=201)


class _server:
    def __init__(self, handler: Any) -> None:
        self.app = web.Application(client_max_size=256 * 1024 * 1024)
        self.app.router.add_post("/v1/files", handler)
        self.runner = web.AppRunner(self.app)

    async def __aenter__(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


async def test_uploading_bytes_makes_no_second_copy() -> None:
    """Peak extra Python memory while uploading 32 MB of bytes: a few chunks, not 2 x 32 MB
    (one big write used to be copied into the transport's buffer, twice)."""
    size = 32 * 1024 * 1024
    data = b"\0" * size
    sink = _Sink()
    async with _server(sink.handle) as base, AsyncReplicate(api_token="t", base_url=base) as client:
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            await client.files.create(data, filename="big.bin")
            peak = tracemalloc.get_traced_memory()[1] - start
        finally:
            tracemalloc.stop()
    assert sink.received > size
    assert peak < size // 4, f"peak {peak / 2**20:.1f} MB for a {size / 2**20:.0f} MB upload"


# -- data: URLs -----------------------------------------------------------------------------

DECODED = [
    ("data:,hello", b"hello"),
    ("data:,hello%20world%21", b"hello world!"),
    ("data:text/plain;charset=utf-8,caf%C3%A9", "café".encode()),
    ("data:;base64,aGk=", b"hi"),
    ("data:;BASE64,aGk=", b"hi"),
    ("data:image/png;Base64,aGk=", b"hi"),
    ("DATA:;base64,aGk=", b"hi"),
    ("data:;base64,aGk", b"hi"),
    ("data:;base64,aG%6B=", b"hi"),
    ("data:;base64,aG k=\r\n", b"hi"),
    ("data:,", b""),
    ("data:;base64,", b""),
    ("data:text/plain;name=a;base64,aGVsbG8=", b"hello"),
]


@pytest.mark.parametrize(("url", "data"), DECODED, ids=[u for u, _ in DECODED])
async def test_data_urls_decode_per_rfc_2397(url: str, data: bytes) -> None:
    assert decode_data_url(url) == data
    async with AsyncReplicate(api_token="t", base_url="http://127.0.0.1:9/v1") as client:
        output = FileOutput(url, client._http)
        assert await output.read() == data
        assert b"".join([chunk async for chunk in output]) == data


INVALID = [
    "data:;base64,!!!",
    "data:;base64,a",
    "data:;base64,aGk=aGk=",
    "data:;base64,a-_b",
    "data:;base64,aGk===",
    "data:text/plain",
    "data:",
    "http://x/,y",
]


@pytest.mark.parametrize("url", INVALID)
async def test_malformed_data_urls_raise_a_typed_error(url: str) -> None:
    """``data:;base64,!!!`` returned ``b""``; bad padding raised a bare ``binascii.Error``."""
    with pytest.raises(DataURLError):
        decode_data_url(url)
    if url.startswith("data:"):
        async with AsyncReplicate(api_token="t", base_url="http://127.0.0.1:9/v1") as client:
            with pytest.raises(DataURLError):
                await FileOutput(url, client._http).read()
