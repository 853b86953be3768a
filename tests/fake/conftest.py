"""Fixtures for the fake server's own tests: plain aiohttp over real sockets."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from replicate_async.testing import FakeReplicate

DATA = Path(__file__).resolve().parent / "data"


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def data(name: str) -> Any:
    """The OpenAPI document (``tests/fake/data``) or a recorded example (``tests/examples``)."""
    folder = DATA if (DATA / name).exists() else EXAMPLES
    return json.loads((folder / name).read_text())


@dataclass
class Resp:
    """A fully read response."""

    status: int
    headers: dict[str, str]
    content_type: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


class Api:
    """A tiny HTTP helper bound to one fake (auth header added unless ``auth=False``)."""

    def __init__(self, fake: FakeReplicate, session: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.session = session

    def url(self, path: str) -> str:
        if path.startswith("http"):
            return path
        return self.fake.url(path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Resp:
        hdrs = dict(self.fake.auth_headers) if auth else {}
        hdrs.update(headers or {})
        async with self.session.request(method, self.url(path), headers=hdrs, **kwargs) as resp:
            body = await resp.read()
            return Resp(resp.status, dict(resp.headers), resp.content_type, body)

    async def get(self, path: str, **kwargs: Any) -> Resp:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Resp:
        return await self.request("POST", path, **kwargs)

    async def create(self, version: str, inputs: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Create a prediction, asserting a 201, and return its JSON."""
        resp = await self.post(
            "/v1/predictions", json={"version": version, "input": inputs}, **kwargs
        )
        assert resp.status == 201, resp.text
        result: dict[str, Any] = resp.json()
        return result


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api(replicate_fake: FakeReplicate, http: aiohttp.ClientSession) -> Api:
    return Api(replicate_fake, http)
