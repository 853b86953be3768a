"""An upload is held in memory once (not again in the request log) and freed on delete.

``python -m tests.fake.upload_memory 99`` prints the same figures for a 99 MB file.
"""

from __future__ import annotations

import hashlib
import io

import aiohttp

from .conftest import Api
from .upload_memory import measure


async def test_an_upload_is_held_once_and_freed_on_delete() -> None:
    result = await measure(16)
    peak, stored, after_delete = result.ratios()
    assert peak <= 1.3
    assert stored <= 1.05
    assert after_delete <= 0.05


async def test_the_log_keeps_size_and_hash_of_large_bodies(api: Api) -> None:
    content = b"z" * (2 * 1024 * 1024)
    form = aiohttp.FormData()
    form.add_field("content", io.BytesIO(content), filename="big.bin")
    resp = await api.post("/v1/files", data=form)
    assert resp.status == 201
    (logged,) = api.fake.requests_matching("POST", "/v1/files")
    assert logged.body == b""
    assert logged.size > len(content)
    assert len(logged.sha256) == 64
    small = await api.post("/v1/predictions", json={"version": "fake/echo", "input": {}})
    assert small.status == 201
    (create,) = api.fake.requests_matching("POST", "/v1/predictions")
    assert create.json() == {"version": "fake/echo", "input": {}}
    assert create.size == len(create.body)
    assert create.sha256 == hashlib.sha256(create.body).hexdigest()
