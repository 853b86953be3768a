"""Helpers for the aioresponses unit tests: read back exactly what the SDK sent."""

from __future__ import annotations

import importlib.util
import json
import sys
from email.message import Message
from email.parser import BytesParser
from types import ModuleType
from typing import Any

import attrs
from aioresponses import aioresponses
from aioresponses.compat import merge_params, normalize_url
from multidict import CIMultiDict
from yarl import URL

from tests.helpers import API, TOKEN

__all__ = [
    "API",
    "TOKEN",
    "Part",
    "Sent",
    "all_sent",
    "assert_standard_headers",
    "converter_without_orjson",
    "multipart_parts",
    "request_count",
    "sent",
    "sent_all",
]


@attrs.frozen
class Sent:
    """One request as aioresponses recorded it."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    data: Any
    kwargs: dict[str, Any]

    @property
    def path(self) -> str:
        """The URL path, e.g. ``/v1/predictions``."""
        return self.url.path

    @property
    def query(self) -> dict[str, str]:
        """The query string (URL query merged with ``params=``) as a dict."""
        return dict(self.url.query)

    @property
    def body(self) -> bytes | None:
        """The raw body bytes (``None`` when nothing was sent)."""
        data = self.data
        if data is None:
            return None
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        if isinstance(data, str):
            return data.encode()
        raise TypeError(f"body is not bytes: {type(data).__name__}")

    def json(self) -> Any:
        """The body decoded as JSON."""
        body = self.body
        assert body is not None, "no body was sent"
        return json.loads(body)


def _key_url(url: str | URL) -> URL:
    return normalize_url(merge_params(url))


def sent_all(mocked: aioresponses, method: str, url: str | URL) -> list[Sent]:
    """Every request recorded for ``method url`` (the URL includes its query string)."""
    key = (method.upper(), _key_url(url))
    calls = mocked.requests.get(key, [])
    return [
        Sent(
            method=key[0],
            url=key[1],
            headers=CIMultiDict(call.kwargs.get("headers") or {}),
            data=call.kwargs.get("data"),
            kwargs=dict(call.kwargs),
        )
        for call in calls
    ]


def sent(mocked: aioresponses, method: str, url: str | URL) -> Sent:
    """The single request recorded for ``method url``; fails if there are zero or several."""
    calls = sent_all(mocked, method, url)
    recorded = {f"{m} {u}": len(c) for (m, u), c in mocked.requests.items()}
    assert len(calls) == 1, f"expected one {method} {url}, recorded: {recorded}"
    return calls[0]


def all_sent(mocked: aioresponses) -> list[tuple[str, str]]:
    """``(method, url)`` of every recorded request (each repeat listed)."""
    return [(m, str(u)) for (m, u), calls in mocked.requests.items() for _ in calls]


def request_count(mocked: aioresponses) -> int:
    """How many requests were recorded in total."""
    return sum(len(calls) for calls in mocked.requests.values())


def assert_standard_headers(
    request: Sent,
    *,
    auth: bool = True,
    content_type: str | None = None,
    accept: str = "application/json",
    extra: dict[str, str] | None = None,
) -> None:
    """Check the exact header set: User-Agent, Accept, auth, Content-Type and extras."""
    headers = request.headers
    assert headers["User-Agent"].startswith("replicate-async/")
    assert headers["Accept"] == accept
    expected = {"User-Agent", "Accept"}
    if auth:
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        expected.add("Authorization")
    else:
        assert "Authorization" not in headers
    if content_type is not None:
        assert headers["Content-Type"] == content_type
        expected.add("Content-Type")
    else:
        assert "Content-Type" not in headers
    for name, value in (extra or {}).items():
        assert headers[name] == value, name
        expected.add(name)
    assert {h.lower() for h in headers} == {h.lower() for h in expected}


@attrs.frozen
class Part:
    """One part of a multipart/form-data body."""

    name: str | None
    filename: str | None
    content_type: str
    body: bytes


class _Sink:
    def __init__(self) -> None:
        self.buffer = bytearray()

    async def write(self, chunk: bytes) -> None:
        self.buffer += chunk


async def multipart_parts(data: Any) -> tuple[str, list[Part]]:
    """Render an aiohttp ``FormData`` or ``MultipartWriter`` and parse it back:
    (Content-Type, parts)."""
    writer = data() if callable(data) else data
    sink = _Sink()
    await writer.write(sink)
    content_type = writer.content_type
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + bytes(sink.buffer)
    message = BytesParser().parsebytes(raw)
    assert message.is_multipart()
    parts: list[Part] = []
    payload = message.get_payload()
    assert isinstance(payload, list)
    for item in payload:
        assert isinstance(item, Message)
        body = item.get_payload(decode=True)
        assert isinstance(body, bytes)
        parts.append(
            Part(
                name=item.get_param("name", header="content-disposition"),  # type: ignore[arg-type]
                filename=item.get_filename(),
                content_type=item.get_content_type(),
                body=body,
            )
        )
    return content_type, parts


def converter_without_orjson(monkeypatch: Any) -> ModuleType:
    """A separate copy of the converter module, imported while orjson is unavailable (the
    stdlib JSON fallback). A copy, not a reload, so the real module and the classes others
    imported from it stay untouched."""
    import replicate_async._converter as converter

    monkeypatch.setitem(sys.modules, "orjson", None)  # makes `import orjson` fail
    spec = importlib.util.spec_from_file_location(
        "replicate_async._converter_without_orjson", converter.__file__
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
