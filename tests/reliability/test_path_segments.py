"""Every operation that puts an argument in the URL path refuses a bad segment before
sending anything: the documented error, and not one request in the fake's log.

A dot segment used to be removed by URL normalisation and reach another endpoint
(``models.versions.delete("alice/m", "..")`` sent ``DELETE /v1/models/alice/m/``, the
model itself); ``%2e%2e`` and control characters were sent as they were. The rule is in
``replicate_async._checks.url.segment`` and every resource goes through it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from replicate_async import AsyncReplicate, InvalidArgumentError, NotFoundError
from replicate_async._checks.url import MAX_SEGMENT_LENGTH
from replicate_async.testing import FakeReplicate

#: The bad segments, each placed where the operation takes an id, owner or name.
BAD_SEGMENTS = {
    "empty": "",
    "dot": ".",
    "dot-dot": "..",
    "slash": "a/b",
    "encoded dot-dot": "%2e%2e",
    "backslash": "a\\b",
    "NUL": "a\x00b",
    "newline": "a\nb",
    "DEL": "a\x7fb",
    "space": "a b",
    "very long": "a" * (MAX_SEGMENT_LENGTH + 1),
}

Op = Callable[[AsyncReplicate, str, str], Awaitable[Any]]


async def _drain(iterator: Any) -> None:
    async for _ in iterator:
        pass


async def _collect(paginator: Any) -> None:
    await paginator.collect()


#: name -> call(client, bad segment, a real version id of fake/echo)
OPERATIONS: dict[str, Op] = {
    "predictions.get": lambda c, s, v: c.predictions.get(s),
    "predictions.cancel": lambda c, s, v: c.predictions.cancel(s),
    "predictions.wait(id)": lambda c, s, v: c.predictions.wait(s),
    "predictions.create owner/name:version": lambda c, s, v: c.predictions.create(
        version=f"fake/echo:{s}", input={}
    ),
    "trainings.get": lambda c, s, v: c.trainings.get(s),
    "trainings.cancel": lambda c, s, v: c.trainings.cancel(s),
    "trainings.wait(id)": lambda c, s, v: c.trainings.wait(s),
    "trainings.create version": lambda c, s, v: c.trainings.create(
        "fake/echo", s, destination="alice/scratch", input={}
    ),
    "trainings.create model owner": lambda c, s, v: c.trainings.create(
        f"{s}/echo", v, destination="alice/scratch", input={}
    ),
    "trainings.create destination name": lambda c, s, v: c.trainings.create(
        "fake/echo", v, destination=f"alice/{s}", input={}
    ),
    "models.get owner": lambda c, s, v: c.models.get(f"{s}/echo"),
    "models.get name": lambda c, s, v: c.models.get(f"fake/{s}"),
    "models.delete name": lambda c, s, v: c.models.delete(f"alice/{s}"),
    "models.update name": lambda c, s, v: c.models.update(f"alice/{s}", description="x"),
    "models.create name": lambda c, s, v: c.models.create(
        "alice", s, visibility="private", hardware="cpu"
    ),
    "models.create owner": lambda c, s, v: c.models.create(
        s, "m", visibility="private", hardware="cpu"
    ),
    "models.readme.get": lambda c, s, v: c.models.readme.get(f"fake/{s}"),
    "models.versions.list": lambda c, s, v: _collect(c.models.versions.list(f"fake/{s}")),
    "models.versions.get": lambda c, s, v: c.models.versions.get("fake/echo", s),
    "models.versions.delete": lambda c, s, v: c.models.versions.delete("alice/my-model", s),
    "models.examples.list": lambda c, s, v: _collect(c.models.examples.list(f"{s}/echo")),
    "models.predictions.create": lambda c, s, v: c.models.predictions.create(f"fake/{s}", input={}),
    "deployments.get": lambda c, s, v: c.deployments.get(f"alice/{s}"),
    "deployments.delete": lambda c, s, v: c.deployments.delete(f"{s}/echo-deployment"),
    "deployments.update": lambda c, s, v: c.deployments.update(f"alice/{s}", min_instances=1),
    "deployments.update version": lambda c, s, v: c.deployments.update(
        "alice/echo-deployment", version=s
    ),
    "deployments.create name": lambda c, s, v: c.deployments.create(
        name=s, model="fake/echo", version=v, hardware="cpu", min_instances=0, max_instances=1
    ),
    "deployments.create version": lambda c, s, v: c.deployments.create(
        name="d", model="fake/echo", version=s, hardware="cpu", min_instances=0, max_instances=1
    ),
    "deployments.predictions.create": lambda c, s, v: c.deployments.predictions.create(
        f"alice/{s}", input={}
    ),
    "collections.get": lambda c, s, v: c.collections.get(s),
    "files.get": lambda c, s, v: c.files.get(s),
    "files.delete": lambda c, s, v: c.files.delete(s),
    "files.download": lambda c, s, v: c.files.download(s, owner="o", expiry=1, signature="x"),
    "run model": lambda c, s, v: c.run(f"fake/{s}", input={}),
    "run version": lambda c, s, v: c.run(f"fake/echo:{s}", input={}),
    "run deployment": lambda c, s, v: c.run(deployment=f"alice/{s}", input={}),
    "stream model": lambda c, s, v: _drain(c.stream(f"{s}/tokens", input={})),
    "stream deployment": lambda c, s, v: _drain(c.stream(deployment=f"alice/{s}", input={})),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_bad_path_segments_are_refused_before_any_request(
    replicate_fake: FakeReplicate, operation: str
) -> None:
    fake = replicate_fake
    version = fake.latest_version_id("fake/echo")
    call = OPERATIONS[operation]
    async with fake.client(max_retries=0) as client:
        fake.clear_requests()
        for label, segment in BAD_SEGMENTS.items():
            with pytest.raises(InvalidArgumentError) as info:
                await call(client, segment, version)
            message = str(info.value)
            assert message, label
            assert len(message) < 400, (label, message)  # a very long id is not echoed whole
            assert fake.requests == [], (label, [(r.method, r.path) for r in fake.requests])


TYPED: dict[str, Op] = {
    "predictions.get": lambda c, s, v: c.predictions.get(s),
    "trainings.cancel": lambda c, s, v: c.trainings.cancel(s),
    "files.get": lambda c, s, v: c.files.get(s),
    "collections.get": lambda c, s, v: c.collections.get(s),
    "models.get": lambda c, s, v: c.models.get(s),
    "deployments.get": lambda c, s, v: c.deployments.get(s),
    "predictions.create version": lambda c, s, v: c.predictions.create(version=s, input={}),
}


@pytest.mark.parametrize("operation", sorted(TYPED))
async def test_non_string_segments_raise_type_error_naming_the_argument(
    replicate_fake: FakeReplicate, operation: str
) -> None:
    fake = replicate_fake
    call = TYPED[operation]
    async with fake.client(max_retries=0) as client:
        fake.clear_requests()
        bad_values: list[Any] = [None, 5, b"id", ["id"]]
        for bad in bad_values:
            with pytest.raises(TypeError, match="must be"):
                await call(client, bad, "")
        assert fake.requests == []


@pytest.mark.parametrize(
    "segment",
    ["abc123", "a.b", "a-b_c", "x" * MAX_SEGMENT_LENGTH, "..a", "a..", "é", "a?b#c"],
)
async def test_good_segments_still_reach_the_api_percent_encoded(
    replicate_fake: FakeReplicate, segment: str
) -> None:
    """The rule refuses only what could change the path: these are sent, as one segment."""
    fake = replicate_fake
    async with fake.client(max_retries=0) as client:
        fake.clear_requests()
        with pytest.raises(NotFoundError):  # the fake has no such prediction
            await client.predictions.get(segment)
    [request] = fake.requests
    assert request.method == "GET"
    assert request.path == f"/v1/predictions/{segment}"


async def test_a_bare_version_is_checked_like_a_segment(replicate_fake: FakeReplicate) -> None:
    """``version=`` goes in the body, where ``owner/name`` is allowed (an official model);
    every other bad segment is refused as in a path."""
    fake = replicate_fake
    async with fake.client(max_retries=0) as client:
        fake.clear_requests()
        for label, segment in BAD_SEGMENTS.items():
            if label == "slash":
                continue
            with pytest.raises(InvalidArgumentError):
                await client.predictions.create(version=segment, input={})
        assert fake.requests == []
