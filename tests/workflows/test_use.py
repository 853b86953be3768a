"""client.use(): a model as an async function, against the fake over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replicate_async import (
    AsyncReplicate,
    FileOutput,
    InvalidArgumentError,
    NotFoundError,
    Prediction,
    PredictionTimeoutError,
    UnprocessableEntityError,
)
from replicate_async._checks.schema import check_input
from replicate_async.exceptions import InputValidationError
from replicate_async.testing import FakeReplicate
from tests.unit.test_schema import inputs_for

from ._virtual import PROMPT, cancels, newest, virtual_client, virtual_fake
from .conftest import json_bodies

TOKENS = "meta/meta-llama-3-8b-instruct"  # official, an iterator-of-strings output
HELLO = "replicate/hello-world"  # not official: runs pinned to its latest version
SDXL_V = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
SDXL = f"stability-ai/sdxl:{SDXL_V}"  # the recorded sdxl schema


def schema_fetches(fake: FakeReplicate) -> int:
    return fake.count("GET", "/v1/models/*") + fake.count("GET", "/v1/deployments/*")


async def test_ten_calls_fetch_the_schema_once(
    client: AsyncReplicate, replicate_fake: FakeReplicate
) -> None:
    fn = client.use(TOKENS)
    assert replicate_fake.count() == 0  # use() itself sends nothing
    outputs = [await fn(prompt=f"call {i} of ten") for i in range(10)]
    # The tokens come back as one text, as the schema's "concatenate" display says.
    assert outputs == [f"call {i} of ten" for i in range(10)]
    assert replicate_fake.count("GET", f"/v1/models/{TOKENS}") == 1
    assert schema_fetches(replicate_fake) == 1
    assert replicate_fake.count("POST", f"/v1/models/{TOKENS}/predictions") == 10


async def test_concurrent_first_calls_share_one_fetch(
    client: AsyncReplicate, replicate_fake: FakeReplicate
) -> None:
    fn = client.use(HELLO)
    outputs = await asyncio.gather(*(fn(text=str(i)) for i in range(10)))
    assert outputs == [f"hello {i}" for i in range(10)]
    assert schema_fetches(replicate_fake) == 1
    version = replicate_fake.latest_version_id(HELLO)
    bodies = json_bodies(replicate_fake, "POST", "/v1/predictions")
    assert {b["version"] for b in bodies} == {f"{HELLO}:{version}"}
    # A copy with other options shares the schema too.
    assert await fn.with_options(timeout=30)(text="x") == "hello x"
    assert schema_fetches(replicate_fake) == 1


async def test_invalid_input_sends_nothing_and_names_every_bad_field(
    client: AsyncReplicate, replicate_fake: FakeReplicate
) -> None:
    fn = client.use(SDXL)
    with pytest.raises(InputValidationError) as caught:
        await fn(prompt=1, width="wide", num_outputs=0, scheduler="FAST", image="me.png")
    # The first call fetched the schema, and nothing else.
    assert [(r.method, r.path) for r in replicate_fake.requests] == [
        ("GET", f"/v1/models/stability-ai/sdxl/versions/{SDXL_V}")
    ]
    error = caught.value
    assert [p.name for p in error.problems] == [
        "prompt",
        "width",
        "num_outputs",
        "scheduler",
        "image",
    ]
    for name in ("prompt", "width", "num_outputs", "scheduler", "image"):
        assert f"input.{name}:" in str(error)
    replicate_fake.clear_requests()
    for call in (fn, fn.create):
        with pytest.raises(InputValidationError):
            await call(prompt="ok", num_inference_steps=501)
    with pytest.raises(InputValidationError):
        async for _ in fn.stream(prompt="ok", num_inference_steps=501):
            pass  # pragma: no cover
    assert replicate_fake.count() == 0


async def test_the_fake_rejects_what_the_checker_rejects_in_the_same_words(
    client: AsyncReplicate, replicate_fake: FakeReplicate
) -> None:
    bad = {"prompt": 1, "num_outputs": 9, "scheduler": "FAST", "mask": "x.png"}
    with pytest.raises(InputValidationError) as local:
        await client.use(SDXL)(**bad)
    with pytest.raises(UnprocessableEntityError) as remote:
        await client.use(SDXL, check_input=False)(**bad)
    assert remote.value.invalid_fields == local.value.invalid_fields
    assert len(local.value.invalid_fields) == 4


async def test_create_stream_and_schema(
    client: AsyncReplicate, replicate_fake: FakeReplicate
) -> None:
    fn = client.use(TOKENS)
    schema = await fn.schema()
    assert schema.model == TOKENS
    assert schema.run_ref == TOKENS  # official: run by name
    assert schema.input_names == ["prompt", "max_tokens", "temperature", "system_prompt"]
    assert schema.required == ["prompt"]
    assert schema.output is not None
    assert schema.output["x-cog-array-type"] == "iterator"
    prediction = await fn.create(prompt="one two")
    assert isinstance(prediction, Prediction)
    assert not prediction.done
    assert json_bodies(replicate_fake, "POST", f"/v1/models/{TOKENS}/predictions")[-1] == {
        "input": {"prompt": "one two"}
    }
    tokens = [token async for token in fn.stream(prompt="a b c")]
    assert tokens == ["a", " b", " c"]
    assert schema_fetches(replicate_fake) == 1


async def test_versions_and_deployments(
    client: AsyncReplicate, replicate_fake: FakeReplicate
) -> None:
    sdxl = client.use(SDXL)
    assert (await sdxl.schema()).run_ref == SDXL
    prediction = await sdxl.create(prompt="a cat")
    assert prediction.version == SDXL_V
    fn = client.use(deployment="alice/echo-deployment")
    assert await fn(text="via a deployment") == {"text": "via a deployment"}
    assert await fn(text="again") == {"text": "again"}
    assert replicate_fake.count("GET", "/v1/deployments/alice/echo-deployment") == 1
    assert replicate_fake.count("GET", "/v1/models/fake/echo/versions/*") == 1
    assert replicate_fake.count("POST", "/v1/deployments/alice/echo-deployment/predictions") == 2
    prediction = await fn.create(text="later")
    assert prediction.input == {"text": "later"}


async def test_a_failed_fetch_is_not_kept(
    client: AsyncReplicate, replicate_fake: FakeReplicate
) -> None:
    fn = client.use("nobody/nothing")
    for _ in range(2):
        with pytest.raises(NotFoundError):
            await fn(prompt="x")
    assert replicate_fake.count("GET", "/v1/models/nobody/nothing") == 2


async def test_a_cancelled_first_caller_does_not_cancel_the_shared_fetch(
    client: AsyncReplicate, replicate_fake: FakeReplicate
) -> None:
    fn = client.use(HELLO)
    first = asyncio.ensure_future(fn.schema())
    second = asyncio.ensure_future(fn(text="still here"))
    await asyncio.sleep(0)
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    assert await second == "hello still here"
    assert schema_fetches(replicate_fake) == 1


async def test_the_deadline_covers_the_run_and_cancels_it() -> None:
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        fn = client.use("fake/slow", timeout=30)  # a 600 s run on virtual time
        call = asyncio.ensure_future(fn(text="never"))
        for _ in range(200):  # 100 virtual seconds at most
            if call.done():
                break
            await clock.advance_async(0.5)
        with pytest.raises(PredictionTimeoutError) as caught:
            await call
        prediction = caught.value.prediction
        assert prediction is not None
        assert fake.count("POST", f"/v1/predictions/{prediction.id}/cancel") == 1
        assert clock.monotonic() >= 30


async def test_leaving_a_stream_cancels_the_prediction() -> None:
    async with virtual_fake() as (fake, clock), virtual_client(fake, clock) as client:
        fn = client.use("fake/tokens")

        async def first_token() -> str | FileOutput:
            async with fn.stream(prompt=PROMPT) as outputs:
                async for token in outputs:
                    return token
            raise AssertionError("no output")  # pragma: no cover

        call = asyncio.ensure_future(first_token())
        for _ in range(200):  # 100 virtual seconds at most
            if call.done():
                break
            await clock.advance_async(0.5)
        assert await call == "w0"
        pid = newest(fake)
        assert pid is not None
        assert cancels(fake, pid) == 1


def test_bad_refs_fail_before_anything_is_sent() -> None:
    client = AsyncReplicate(api_token="r8_test", base_url="http://127.0.0.1:9")
    for bad in ("no-slash", "a/b/c", "a" * 64):  # a bare version id has no schema to look up
        with pytest.raises(ValueError, match="owner/name"):
            client.use(bad)
    with pytest.raises(InvalidArgumentError):
        client.use("a/b", deployment="c/d")
    with pytest.raises(InvalidArgumentError):
        client.use()
    with pytest.raises(TypeError):
        client.use("a/b", nonsense=1)
    assert repr(client.use("a/b")) == "ModelFunction('a/b')"


# -- the checker and the fake's 422s agree on generated inputs --------------------------

#: Models the fake serves: the recorded sdxl schema (both versions) and the fake's own.
SERVED = [
    SDXL,
    "stability-ai/sdxl:da77bc59ee60423279fd632efb4795ab731d9e3ca9705ef3341091fb989b7eaf",
    "fake/image",
    "fake/upper",
    "fake/tokens",
    "replicate/hello-world",
]


@pytest.mark.parametrize("ref", SERVED)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_the_checker_agrees_with_the_fakes_422s(
    replicate_fake: FakeReplicate, ref: str, data: st.DataObject
) -> None:
    async with replicate_fake.client() as client:
        schema = await client.use(ref).schema()
    document = schema.openapi_schema
    input = data.draw(inputs_for(document))
    local = [p.to_json() for p in check_input(document, input)]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            replicate_fake.url("/v1/predictions"),
            data=json.dumps({"version": schema.run_ref, "input": input}),
            headers={**replicate_fake.auth_headers, "Content-Type": "application/json"},
        ) as response,
    ):
        body = await response.json(content_type=None)
    if local:
        assert response.status == 422
        assert body["invalid_fields"] == local
    else:
        assert response.status in (201, 202), body
