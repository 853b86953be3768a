"""Every kind of call the fault matrix exercises, against the fake or a dead port.

A :class:`Call` knows which request it makes (``method`` + ``path``, the target of the
injected fault and of the request count), how to prepare the fake for it (``setup``,
whose requests are not counted) and how to make it (``invoke``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from replicate_async import AsyncReplicate
from replicate_async.testing import FakeReplicate

__all__ = ["CALLS", "Call", "Prepared"]

ECHO = "fake/echo"
TOKENS = "fake/tokens"
IMAGE = "fake/image"


@dataclass(frozen=True)
class Prepared:
    """What ``setup`` leaves for ``invoke``: ids, URLs, a baseline request count."""

    value: Any = None
    baseline: int = 1


Setup = Callable[[AsyncReplicate, FakeReplicate], Awaitable[Prepared]]
Invoke = Callable[[AsyncReplicate, str, Prepared], Awaitable[Any]]


@dataclass(frozen=True)
class Call:
    """One kind of call; ``invoke`` gets the client, the API origin and ``setup``'s result."""

    name: str
    method: str
    path: str
    setup: Setup
    invoke: Invoke
    #: The value a successful call returns (checked, so "ok" means the right answer).
    check: Callable[[Any, Prepared], bool]
    #: What the call creates on the server ("predictions", "files"), to count duplicates.
    creates: str | None = None


async def _nothing(client: AsyncReplicate, fake: FakeReplicate) -> Prepared:
    return Prepared()


async def _echo_version(client: AsyncReplicate, fake: FakeReplicate) -> Prepared:
    return Prepared(fake.latest_version_id(ECHO))


async def _get(client: AsyncReplicate, origin: str, prep: Prepared) -> Any:
    return await client.account.get()


async def _create(client: AsyncReplicate, origin: str, prep: Prepared) -> Any:
    version = prep.value or "0" * 64
    return await client.predictions.create(version=version, input={"text": "hi"})


async def _query(client: AsyncReplicate, origin: str, prep: Prepared) -> Any:
    return await client.models.search("echo")


async def _file(client: AsyncReplicate, fake: FakeReplicate) -> Prepared:
    uploaded = await client.files.create(b"to be deleted", filename="doomed.txt")
    return Prepared(uploaded.id)


async def _delete(client: AsyncReplicate, origin: str, prep: Prepared) -> Any:
    await client.files.delete(prep.value or "no-such-file")
    return "deleted"


async def _pages(client: AsyncReplicate, fake: FakeReplicate) -> Prepared:
    """Count the pages of a clean walk: the baseline the faulted walk is compared to."""
    fake.add_predictions(7)
    before = fake.count("GET", "/v1/predictions")
    items = await client.predictions.list().collect()
    pages = fake.count("GET", "/v1/predictions") - before
    assert pages >= 3, "the walk should span several pages"
    return Prepared(len(items), baseline=pages)


async def _walk(client: AsyncReplicate, origin: str, prep: Prepared) -> Any:
    return await client.predictions.list().collect()


async def _run(client: AsyncReplicate, origin: str, prep: Prepared) -> Any:
    # wait=False: create, then poll (the client's PollPolicy is fast in these tests); with
    # the default Prefer: wait the read timeout is raised above the hold, by design.
    version = prep.value or "0" * 64
    return await client.run(f"{ECHO}:{version}", input={"text": "hi"}, wait=False)


async def _tokens_version(client: AsyncReplicate, fake: FakeReplicate) -> Prepared:
    return Prepared(fake.latest_version_id(TOKENS))


async def _stream(client: AsyncReplicate, origin: str, prep: Prepared) -> Any:
    version = prep.value or "0" * 64
    events = client.stream(
        f"{TOKENS}:{version}",
        input={"prompt": "one two three"},
        idle_timeout=client.config.timeouts.read,
        max_reconnects=1,
    )
    return [(event.event, event.data) async for event in events]


async def _upload(client: AsyncReplicate, origin: str, prep: Prepared) -> Any:
    return await client.files.create(b"uploaded bytes", filename="up.txt")


async def _image(client: AsyncReplicate, fake: FakeReplicate) -> Prepared:
    version = fake.latest_version_id(IMAGE)
    prediction = await client.predictions.create(version=version, input={"prompt": "x"})
    return Prepared(f"/delivery/{prediction.id}/out-0.png")


async def _download(client: AsyncReplicate, origin: str, prep: Prepared) -> Any:
    path = prep.value or "/delivery/gone/out-0.png"
    return await client.file_output(origin + path).read()


CALLS: list[Call] = [
    Call("GET", "GET", "/v1/account", _nothing, _get, lambda r, p: r.username == "alice"),
    Call(
        "POST create",
        "POST",
        "/v1/predictions",
        _echo_version,
        _create,
        lambda r, p: r.status == "starting",
        "predictions",
    ),
    Call(
        "QUERY search",
        "QUERY",
        "/v1/models",
        _nothing,
        _query,
        lambda r, p: any(m.name == "echo" for m in r.results),
    ),
    Call("DELETE", "DELETE", "/v1/files/*", _file, _delete, lambda r, p: r == "deleted"),
    Call("paginated walk", "GET", "/v1/predictions", _pages, _walk, lambda r, p: len(r) == p.value),
    Call(
        "run()",
        "POST",
        "/v1/predictions",
        _echo_version,
        _run,
        lambda r, p: r == {"text": "hi"},
        "predictions",
    ),
    Call(
        "stream",
        "GET",
        "/v1/streams/*",
        _tokens_version,
        _stream,
        lambda r, p: (
            [d for e, d in r if e == "output"] == ["one", " two", " three"] and r[-1][0] == "done"
        ),
        "predictions",
    ),
    Call("file upload", "POST", "/v1/files", _nothing, _upload, lambda r, p: r.size == 14, "files"),
    Call(
        "file download",
        "GET",
        "/delivery/*",
        _image,
        _download,
        lambda r, p: r.startswith(b"\x89PNG"),
    ),
]
