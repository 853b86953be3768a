"""Bad arguments raise ValueError/TypeError before any request is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from aioresponses import aioresponses

from replicate_async import AsyncReplicate
from replicate_async._checks.body import events_filter
from replicate_async._checks.numbers import cancel_after_header, prefer_wait
from replicate_async._checks.url import model_ref, version_ref
from tests.helpers import example

from ._helpers import API, request_count, sent

VERSION = "a" * 64
Call = Callable[[AsyncReplicate], Awaitable[Any]]


def _create(**kwargs: Any) -> Call:
    args: dict[str, Any] = {"version": VERSION, "input": {}}
    args.update(kwargs)
    return lambda c: c.predictions.create(**args)


BAD_CALLS: list[tuple[str, Call, type[Exception]]] = [
    # predictions.create: wait
    ("wait=0", _create(wait=0), ValueError),
    ("wait=61", _create(wait=61), ValueError),
    ("wait=-1", _create(wait=-1), ValueError),
    ("wait='x'", _create(wait="x"), TypeError),
    ("wait=1.5", _create(wait=1.5), TypeError),
    # predictions.create: cancel_after
    ("cancel_after=4", _create(cancel_after=4), ValueError),
    ("cancel_after=4.99", _create(cancel_after=4.99), ValueError),
    ("cancel_after=0", _create(cancel_after=0), ValueError),
    ("cancel_after=-30", _create(cancel_after=-30), ValueError),
    ("cancel_after=nan", _create(cancel_after=float("nan")), ValueError),
    ("cancel_after=inf", _create(cancel_after=float("inf")), ValueError),
    ("cancel_after=timedelta(3s)", _create(cancel_after=timedelta(seconds=3)), ValueError),
    ("cancel_after='4s'", _create(cancel_after="4s"), ValueError),
    ("cancel_after='3'", _create(cancel_after="3"), ValueError),
    ("cancel_after='soon'", _create(cancel_after="soon"), ValueError),
    ("cancel_after=''", _create(cancel_after=""), ValueError),
    ("cancel_after=True", _create(cancel_after=True), TypeError),
    ("cancel_after=[30]", _create(cancel_after=[30]), TypeError),
    # predictions.create: webhooks and stream
    ("events='completed'", _create(webhook_events_filter="completed"), TypeError),
    ("events=['done']", _create(webhook_events_filter=["done"]), ValueError),
    ("events=['start','finish']", _create(webhook_events_filter=["start", "finish"]), ValueError),
    ("webhook=ftp", _create(webhook="ftp://example.com/x"), ValueError),
    ("webhook=relative", _create(webhook="/hook"), ValueError),
    ("webhook=123", _create(webhook=123), TypeError),
    ("stream='yes'", _create(stream="yes"), TypeError),
    # predictions.create: version and input
    ("version=int", _create(version=123), TypeError),
    ("version=None", _create(version=None), TypeError),
    ("version=''", _create(version=""), ValueError),
    ("version=spaces", _create(version="not a version"), ValueError),
    ("version=a/b/c", _create(version="a/b/c"), ValueError),
    ("version=trailing-colon", _create(version="a/b:"), ValueError),
    ("input=str", _create(input="prompt"), TypeError),
    ("input=list", _create(input=[1, 2]), TypeError),
    ("input=None", _create(input=None), TypeError),
    ("input=int-key", _create(input={1: "x"}), TypeError),
    ("input=object", _create(input={"x": object()}), TypeError),
    ("input=set", _create(input={"x": {1, 2}}), TypeError),
    ("input=Decimal", _create(input={"x": Decimal("1.5")}), TypeError),
    # the other create endpoints
    (
        "models.predictions bad ref",
        lambda c: c.models.predictions.create("noslash", input={}),
        ValueError,
    ),
    (
        "models.predictions wait=0",
        lambda c: c.models.predictions.create("a/b", input={}, wait=0),
        ValueError,
    ),
    (
        "models.predictions input",
        lambda c: c.models.predictions.create("a/b", input={"f": object()}),
        TypeError,
    ),
    (
        "deployments.predictions bad ref",
        lambda c: c.deployments.predictions.create("a/b/c", input={}),
        ValueError,
    ),
    (
        "deployments.predictions cancel_after=1",
        lambda c: c.deployments.predictions.create("a/b", input={}, cancel_after=1),
        ValueError,
    ),
    (
        "deployments.predictions events",
        lambda c: c.deployments.predictions.create("a/b", input={}, webhook_events_filter=["x"]),
        ValueError,
    ),
    # models
    ("models.get no slash", lambda c: c.models.get("sdxl"), ValueError),
    ("models.get None", lambda c: c.models.get(None), TypeError),
    ("models.get three parts", lambda c: c.models.get("a/b/c"), ValueError),
    ("models.get empty owner", lambda c: c.models.get("/b"), ValueError),
    ("models.get traversal", lambda c: c.models.get("../b"), ValueError),
    (
        "models.create visibility",
        lambda c: c.models.create("a", "b", visibility="secret", hardware="cpu"),
        ValueError,
    ),
    (
        "models.create hardware",
        lambda c: c.models.create("a", "b", visibility="public", hardware=""),
        ValueError,
    ),
    (
        "models.create bad name",
        lambda c: c.models.create("a", "b/c", visibility="public", hardware="cpu"),
        ValueError,
    ),
    ("models.update nothing", lambda c: c.models.update("a/b"), ValueError),
    ("models.update unknown", lambda c: c.models.update("a/b", visibility="public"), TypeError),
    ("models.update non-str", lambda c: c.models.update("a/b", description=5), TypeError),
    ("models.delete bad", lambda c: c.models.delete("ab"), ValueError),
    ("models.readme bad", lambda c: c.models.readme.get("ab"), ValueError),
    ("versions.get empty id", lambda c: c.models.versions.get("a/b", ""), ValueError),
    ("versions.get slash id", lambda c: c.models.versions.get("a/b", "x/y"), ValueError),
    ("versions.delete int id", lambda c: c.models.versions.delete("a/b", 5), TypeError),
    # deployments
    ("deployments.get bad", lambda c: c.deployments.get("nope"), ValueError),
    ("deployments.delete bad", lambda c: c.deployments.delete(""), ValueError),
    ("deployments.update nothing", lambda c: c.deployments.update("a/b"), ValueError),
    (
        "deployments.update min=6",
        lambda c: c.deployments.update("a/b", min_instances=6),
        ValueError,
    ),
    (
        "deployments.update max=21",
        lambda c: c.deployments.update("a/b", max_instances=21),
        ValueError,
    ),
    (
        "deployments.update min=True",
        lambda c: c.deployments.update("a/b", min_instances=True),
        TypeError,
    ),
    (
        "deployments.create min>max",
        lambda c: c.deployments.create(
            name="d", model="a/b", version=VERSION, hardware="cpu", min_instances=3, max_instances=2
        ),
        ValueError,
    ),
    (
        "deployments.create min=-1",
        lambda c: c.deployments.create(
            name="d",
            model="a/b",
            version=VERSION,
            hardware="cpu",
            min_instances=-1,
            max_instances=2,
        ),
        ValueError,
    ),
    (
        "deployments.create model",
        lambda c: c.deployments.create(
            name="d", model="ab", version=VERSION, hardware="cpu", min_instances=0, max_instances=2
        ),
        ValueError,
    ),
    (
        "deployments.create name",
        lambda c: c.deployments.create(
            name="d/e",
            model="a/b",
            version=VERSION,
            hardware="cpu",
            min_instances=0,
            max_instances=2,
        ),
        ValueError,
    ),
    (
        "deployments.create max='2'",
        lambda c: c.deployments.create(
            name="d",
            model="a/b",
            version=VERSION,
            hardware="cpu",
            min_instances=0,
            max_instances="2",
        ),
        TypeError,
    ),
    # files
    ("files.get empty", lambda c: c.files.get(""), ValueError),
    ("files.get slash", lambda c: c.files.get("a/b"), ValueError),
    ("files.get padded", lambda c: c.files.get(" abc "), ValueError),
    ("files.delete None", lambda c: c.files.delete(None), TypeError),
    (
        "files.download expiry str",
        lambda c: c.files.download("f", owner="o", expiry="1", signature="s"),
        TypeError,
    ),
    (
        "files.download expiry bool",
        lambda c: c.files.download("f", owner="o", expiry=True, signature="s"),
        TypeError,
    ),
    (
        "files.download owner empty",
        lambda c: c.files.download("f", owner="", expiry=1, signature="s"),
        ValueError,
    ),
    (
        "files.download signature empty",
        lambda c: c.files.download("f", owner="o", expiry=1, signature=""),
        ValueError,
    ),
    ("files.create int", lambda c: c.files.create(123), TypeError),
    ("files.create metadata str", lambda c: c.files.create(b"x", metadata="m"), TypeError),
    (
        "files.create metadata object",
        lambda c: c.files.create(b"x", metadata={"o": object()}),
        TypeError,
    ),
    ("files.create long filename", lambda c: c.files.create(b"x", filename="é" * 128), ValueError),
    ("files.create filename int", lambda c: c.files.create(b"x", filename=5), TypeError),
    (
        "files.create missing path",
        lambda c: c.files.create("/nonexistent/definitely/missing.bin"),
        FileNotFoundError,
    ),
    # trainings
    (
        "trainings.create no version",
        lambda c: c.trainings.create("a/b", destination="me/x", input={}),
        ValueError,
    ),
    (
        "trainings.create two versions",
        lambda c: c.trainings.create("a/b:v1", "v2", destination="me/x", input={}),
        ValueError,
    ),
    (
        "trainings.create destination",
        lambda c: c.trainings.create("a/b", "v1", destination="mex", input={}),
        ValueError,
    ),
    (
        "trainings.create input",
        lambda c: c.trainings.create("a/b", "v1", destination="me/x", input="x"),
        TypeError,
    ),
    (
        "trainings.create events",
        lambda c: c.trainings.create(
            "a/b", "v1", destination="me/x", input={}, webhook_events_filter=["nope"]
        ),
        ValueError,
    ),
    (
        "trainings.create model int",
        lambda c: c.trainings.create(5, "v1", destination="me/x", input={}),
        TypeError,
    ),
    ("trainings.get empty", lambda c: c.trainings.get(""), ValueError),
    ("trainings.cancel slash", lambda c: c.trainings.cancel("a/b"), ValueError),
    # predictions get/cancel
    ("predictions.get empty", lambda c: c.predictions.get(""), ValueError),
    ("predictions.get int", lambda c: c.predictions.get(42), TypeError),
    ("predictions.cancel slash", lambda c: c.predictions.cancel("../x"), ValueError),
    # collections
    ("collections.get empty", lambda c: c.collections.get(""), ValueError),
    # search
    ("search empty", lambda c: c.search(""), ValueError),
    ("search blank", lambda c: c.search("   "), ValueError),
    ("search int", lambda c: c.search(5), TypeError),
    ("search limit=0", lambda c: c.search("x", limit=0), ValueError),
    ("search limit=51", lambda c: c.search("x", limit=51), ValueError),
    ("search limit=True", lambda c: c.search("x", limit=True), ValueError),
    ("search limit='5'", lambda c: c.search("x", limit="5"), ValueError),
]


@pytest.mark.parametrize(
    ("call", "error"), [(c, e) for _, c, e in BAD_CALLS], ids=[name for name, _, _ in BAD_CALLS]
)
async def test_bad_arguments_raise_before_sending(
    client: AsyncReplicate, mocked: aioresponses, call: Call, error: type[Exception]
) -> None:
    """The bad argument is rejected with the right exception and no request is recorded."""
    with pytest.raises(error):
        await call(client)
    assert request_count(mocked) == 0
    assert client.stats["requests"] == 0


LIST_CALLS: list[tuple[str, Callable[[AsyncReplicate], Any], type[Exception]]] = [
    ("models.list sort_by", lambda c: c.models.list(sort_by="name"), ValueError),
    ("models.list sort_direction", lambda c: c.models.list(sort_direction="up"), ValueError),
    ("models.search empty", lambda c: c.models.search(""), ValueError),
    ("models.search int", lambda c: c.models.search(3), TypeError),
    ("predictions.list source", lambda c: c.predictions.list(source="api"), ValueError),
    (
        "predictions.list created_after int",
        lambda c: c.predictions.list(created_after=1),
        TypeError,
    ),
    (
        "predictions.list created_before list",
        lambda c: c.predictions.list(created_before=[2024]),
        TypeError,
    ),
    ("versions.list bad model", lambda c: c.models.versions.list("ab"), ValueError),
    ("examples.list bad model", lambda c: c.models.examples.list("a/b/c"), ValueError),
    ("files.list cursor empty", lambda c: c.files.list(cursor=""), ValueError),
    ("trainings.list cursor null", lambda c: c.trainings.list(cursor="null"), ValueError),
]


@pytest.mark.parametrize(
    ("call", "error"), [(c, e) for _, c, e in LIST_CALLS], ids=[name for name, _, _ in LIST_CALLS]
)
async def test_list_arguments_checked_at_call(
    client: AsyncReplicate,
    mocked: aioresponses,
    call: Callable[[AsyncReplicate], Any],
    error: type[Exception],
) -> None:
    """List methods check their arguments when called, before anything is awaited."""
    with pytest.raises(error):
        call(client)
    assert request_count(mocked) == 0


# -- the accepted side of the same checks ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "header"),
    [
        (5, "5s"),
        (30, "30s"),
        (5.5, "6s"),
        (timedelta(minutes=5), "300s"),
        (timedelta(seconds=5), "5s"),
        ("30", "30"),
        ("30s", "30s"),
        ("5m", "5m"),
        ("1h30m45s", "1h30m45s"),
        ("1h", "1h"),
        (None, None),
    ],
)
def test_cancel_after_header_values(value: Any, header: str | None) -> None:
    """cancel_after: numbers become whole seconds, strings pass through, None omits it."""
    assert cancel_after_header(value) == header


@pytest.mark.parametrize(
    ("wait", "expected"),
    [
        (None, (None, None)),
        (False, (None, None)),
        (True, ("wait", 60.0)),
        (1, ("wait=1", 1.0)),
        (60, ("wait=60", 60.0)),
    ],
)
def test_prefer_wait_values(wait: Any, expected: tuple[Any, Any]) -> None:
    """wait: True is a bare `wait`, 1-60 is `wait=N`, None/False send nothing."""
    assert prefer_wait(wait) == expected


@pytest.mark.parametrize(
    "version",
    [
        VERSION,
        "hidden",
        "dp-a557b7387b4940df25b23f779dc534c4",
        f"a/b:{VERSION}",
        "black-forest-labs/flux-1.1-pro",
        "meta/meta-llama-3-8b-instruct",
    ],
)
def test_version_ref_accepts(version: str) -> None:
    """version_ref accepts ids (hex or not), owner/name:id and owner/name unchanged."""
    assert version_ref(version) == version


def test_model_ref_splits() -> None:
    """model_ref returns (owner, name)."""
    assert model_ref("stability-ai/sdxl") == ("stability-ai", "sdxl")
    assert model_ref("a_b.c/d-e.f") == ("a_b.c", "d-e.f")


def test_events_filter_values() -> None:
    """events_filter keeps order and accepts any iterable of known events."""
    hook = "https://example.com/hook"
    assert events_filter(None, webhook=None) is None
    assert events_filter(("completed", "start"), webhook=hook) == ["completed", "start"]
    assert events_filter([], webhook=hook) == []


async def test_cancel_after_timedelta_sent(client: AsyncReplicate, mocked: aioresponses) -> None:
    """A timedelta cancel_after is sent in whole seconds."""
    mocked.post(
        f"{API}/predictions", status=201, payload=example("prediction-create-async-starting")
    )
    await client.predictions.create(
        version=VERSION, input={}, cancel_after=timedelta(minutes=2, seconds=0.2)
    )
    assert sent(mocked, "POST", f"{API}/predictions").headers["Cancel-After"] == "121s"


async def test_input_mapping_types_accepted(client: AsyncReplicate, mocked: aioresponses) -> None:
    """Any Mapping with str keys works as input, nested JSON values kept exactly."""
    from types import MappingProxyType

    mocked.post(
        f"{API}/predictions", status=201, payload=example("prediction-create-async-starting")
    )
    data = {"s": "é", "n": None, "f": 0.5, "l": [1, {"a": True}], "big": 2**53}
    await client.predictions.create(version=VERSION, input=MappingProxyType(data))
    assert sent(mocked, "POST", f"{API}/predictions").json()["input"] == data


async def test_input_not_mutated(client: AsyncReplicate, mocked: aioresponses) -> None:
    """The caller's input dict is not modified by create()."""
    mocked.post(
        f"{API}/predictions", status=201, payload=example("prediction-create-async-starting")
    )
    data = {"prompt": "x"}
    await client.predictions.create(version=VERSION, input=data, webhook="https://e.x/h")
    assert data == {"prompt": "x"}


@pytest.mark.parametrize(
    "bad",
    [
        {"wait": 0},
        {"cancel_after": 1},
        {"webhook_events_filter": ["nope"]},
        {"stream": "y"},
        {"webhook": "ftp://x"},
    ],
    ids=["wait", "cancel_after", "events", "stream", "webhook"],
)
async def test_bad_options_rejected_before_file_upload(
    client: AsyncReplicate, mocked: aioresponses, bad: dict[str, Any]
) -> None:
    """A large file input is not uploaded when another argument is invalid."""
    big = b"x" * (300 * 1024)  # above the data-URL threshold: would be uploaded
    with pytest.raises((ValueError, TypeError)):
        await client.predictions.create(version=VERSION, input={"image": big}, **bad)
    assert request_count(mocked) == 0


async def test_trainings_webhook_validated(client: AsyncReplicate, mocked: aioresponses) -> None:
    """trainings.create checks its webhook like the prediction creates do."""
    with pytest.raises(TypeError, match="webhook"):
        await client.trainings.create("a/b", "v1", destination="me/x", input={}, webhook=123)
    with pytest.raises(ValueError):
        await client.trainings.create("a/b", "v1", destination="me/x", input={}, webhook="x")
    assert request_count(mocked) == 0
