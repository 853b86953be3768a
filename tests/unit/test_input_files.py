"""One rule for what counts as a file in a model input, shared by the three places that
ask: the JSON check before sending, the upload/inline step, and the schema checker.

Before, each had its own copy with small differences (a mapping with a ``read`` method
was a file to the schema checker but JSON to the upload step).
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

from replicate_async import AsyncReplicate
from replicate_async._checks.body import check_json_input, is_file
from replicate_async._checks.schema import type_name
from tests.helpers import example

from ._helpers import API, sent

VERSION = "a" * 64


class _Reader:
    def read(self, size: int = -1) -> bytes:
        return b"\x01"


class _ReadableText(str):
    def read(self) -> str:
        return str(self)


class _ReadableDict(dict[str, Any]):
    def read(self) -> bytes:
        return b""


class _PathLikeDict(dict[str, Any]):
    def __fspath__(self) -> str:
        return "/tmp/x"


class _AsyncIterableList(list[Any]):
    def __aiter__(self) -> AsyncIterator[bytes]:
        raise AssertionError("never iterated")


async def _chunks() -> AsyncIterator[bytes]:
    yield b"x"


FILES = [
    b"\x01",
    bytearray(b"\x01"),
    memoryview(b"\x01"),
    Path("photo.png"),
    io.BytesIO(b"\x01"),
    _Reader(),
]
NOT_FILES = [
    "text",
    _ReadableText("text"),  # text is text, whatever else it has
    _ReadableDict(a=1),  # a JSON object, walked for files inside
    _PathLikeDict(a=1),
    _AsyncIterableList([1]),  # a JSON array
    1,
    1.5,
    True,
    None,
]


@pytest.mark.parametrize("value", FILES, ids=repr)
def test_files(value: Any) -> None:
    assert is_file(value)
    assert type_name(value) == "string"  # it will be sent as a URL
    check_json_input({"x": value})  # allowed anywhere in an input


def test_an_async_iterable_of_bytes_is_a_file() -> None:
    chunks = _chunks()
    assert is_file(chunks)
    assert type_name(chunks) == "string"


@pytest.mark.parametrize("value", NOT_FILES, ids=repr)
def test_not_files(value: Any) -> None:
    assert not is_file(value)
    assert type_name(value) != "string" or isinstance(value, str)
    check_json_input({"x": value})  # JSON as it is


def test_other_objects_are_neither_files_nor_json() -> None:
    assert not is_file(object())
    with pytest.raises(TypeError, match=r"input\['x'\] is a object"):
        check_json_input({"x": object()}, "input")


async def test_what_a_create_sends(client: AsyncReplicate, mocked: aioresponses) -> None:
    """Files become data: URLs, also inside a mapping that has a read method; text with a
    read method and path-like mappings are sent as the JSON they are."""
    url = f"{API}/predictions"
    mocked.post(url, status=201, payload=example("prediction-create-async-starting"))
    value = {
        "readable": _ReadableDict(image=b"\x01"),
        "pathlike": _PathLikeDict(n=1),
        "text": _ReadableText("hello"),
        "file": io.BytesIO(b"\x02"),
    }
    await client.predictions.create(version=VERSION, input=value)
    body = json.loads(sent(mocked, "POST", url).data)
    assert body["input"] == {
        "readable": {"image": "data:application/octet-stream;base64,AQ=="},
        "pathlike": {"n": 1},
        "text": "hello",
        "file": "data:application/octet-stream;base64,Ag==",
    }
