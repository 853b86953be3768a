"""The controls a test suite reaches for: seeded ids, inspectable state, scripted runs,
the environment helper, in-process webhook receivers and the read-only log endpoint."""

from __future__ import annotations

import asyncio
import io
import json
import os
from collections.abc import MutableMapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from replicate_async.testing import FakeReplicate, ManualClock, ScriptRule

from .conftest import Api

ECHO = {"version": "fake/echo", "input": {"text": "hi"}}


async def upload(api: Api, content: bytes) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("content", io.BytesIO(content), filename="a.bin")
    resp = await api.post("/v1/files", data=form)
    assert resp.status == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


async def create(api: Api, body: dict[str, Any] = ECHO) -> dict[str, Any]:
    resp = await api.post("/v1/predictions", json=body)
    assert resp.status == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


# ------------------------------------------------------------------------ seeded ids


async def _ids(seed: int | bool, http: Any) -> list[str]:
    async with FakeReplicate(seed=seed) as fake:
        api = Api(fake, http)
        first = await create(api)
        second = await create(api)
        file = await upload(api, b"x")
        return [first["id"], second["id"], file["id"]]


async def test_the_same_seed_gives_the_same_ids(http: Any) -> None:
    one, again, other = await _ids(42, http), await _ids(42, http), await _ids(43, http)
    assert one == again
    assert len(set(one)) == 3
    assert set(one).isdisjoint(other)
    assert all(len(i) == 26 for i in one)


async def test_seed_false_starts_empty_and_true_loads_the_models() -> None:
    async with FakeReplicate(seed=False) as empty, FakeReplicate() as seeded:
        assert empty.predictions == {}
        assert empty._ctx.store.get_model("fake/echo") is None
        assert seeded.latest_version_id("fake/echo")


# ------------------------------------------------------------------ inspectable state


async def test_predictions_trainings_and_files_are_live_read_only_views(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    created = await create(api)
    prediction = replicate_fake.predictions[created["id"]]
    assert prediction.input == {"text": "hi"}
    await replicate_fake.wait_for_prediction(created["id"])
    assert prediction.status == "succeeded"
    assert prediction.output == {"text": "hi"}
    file = await upload(api, b"abc")
    assert bytes(replicate_fake.files[file["id"]].content) == b"abc"
    assert set(replicate_fake.trainings) == set(replicate_fake._ctx.store.trainings)
    with pytest.raises(TypeError):
        replicate_fake.predictions["x"] = prediction  # type: ignore[index]


# ----------------------------------------------------------------------- scripting


@pytest.mark.replicate_fake(default_duration=0.01)
async def test_hold_then_release(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.script("hold")
    created = await create(api)
    for _ in range(20):  # polls see it still running, whatever the run's duration
        assert (await api.get(f"/v1/predictions/{created['id']}")).json()["status"] in (
            "starting",
            "processing",
        )
    replicate_fake.release(created["id"])
    done = await replicate_fake.wait_for_prediction(created["id"])
    assert done["status"] == "succeeded"
    assert done["output"] == {"text": "hi"}


async def test_complete_and_fail_on_command(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.set_model_behaviour("fake/echo", duration=3600)
    first, second = await create(api), await create(api)
    await replicate_fake.complete(first["id"], output={"scripted": True})
    await replicate_fake.fail(second["id"], error="GPU on fire")
    got_first = (await api.get(f"/v1/predictions/{first['id']}")).json()
    got_second = (await api.get(f"/v1/predictions/{second['id']}")).json()
    assert (got_first["status"], got_first["output"]) == ("succeeded", {"scripted": True})
    assert (got_second["status"], got_second["error"]) == ("failed", "GPU on fire")
    assert "completed_at" in got_first
    third = await create(api)
    await replicate_fake.cancel(third["id"])
    assert replicate_fake.predictions[third["id"]].status == "canceled"
    with pytest.raises(KeyError):
        replicate_fake.hold("no-such-prediction")


async def test_fail_the_third_create_of_a_model(api: Api, replicate_fake: FakeReplicate) -> None:
    rule = replicate_fake.script("fail", nth=3, model="fake/echo", error="third time unlucky")
    assert isinstance(rule, ScriptRule)
    await create(api, {"version": "fake/upper", "input": {"text": "not counted"}})
    created = [await create(api) for _ in range(4)]
    finals = [await replicate_fake.wait_for_prediction(p["id"]) for p in created]
    assert [p["status"] for p in finals] == ["succeeded", "succeeded", "failed", "succeeded"]
    assert finals[2]["error"] == "third time unlucky"
    assert rule.applied_to == created[2]["id"]


async def test_cancel_and_complete_the_next_create(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.set_model_behaviour("fake/echo", duration=3600)
    replicate_fake.script("cancel")
    assert (await create(api))["status"] == "canceled"
    replicate_fake.script("complete", output="at once")
    done = await create(api)
    assert (done["status"], done["output"]) == ("succeeded", "at once")
    assert (await create(api))["status"] == "starting"  # the rules were used up


def test_script_rules_are_checked() -> None:
    fake = FakeReplicate(seed=False)
    with pytest.raises(ValueError, match="action"):
        fake.script("explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nth"):
        fake.script("hold", nth=0)


async def test_a_held_run_on_a_manual_clock_ends_at_its_deadline() -> None:
    clock = ManualClock()
    async with FakeReplicate(clock=clock) as fake:
        fake.script("hold")
        async with fake.client() as client:
            prediction = await client.predictions.create(
                version="fake/echo", input={}, cancel_after="5s"
            )
        await clock.advance_async(6)
        assert fake.predictions[prediction.id].status == "canceled"


# --------------------------------------------------------------------- environment


async def test_env_sets_and_restores_the_variables(replicate_fake: FakeReplicate) -> None:
    os.environ.pop("REPLICATE_BASE_URL", None)
    with replicate_fake.env() as values:
        assert os.environ["REPLICATE_BASE_URL"] == replicate_fake.base_url
        assert os.environ["REPLICATE_API_TOKEN"] == replicate_fake.token
        assert values == replicate_fake.env_vars
    assert "REPLICATE_BASE_URL" not in os.environ


async def test_the_env_fixture(replicate_fake_env: FakeReplicate) -> None:
    assert os.environ["REPLICATE_BASE_URL"] == replicate_fake_env.base_url
    assert os.environ["REPLICATE_API_TOKEN"] == replicate_fake_env.token


# ---------------------------------------------------------- in-process webhook receivers


class AsgiApp:
    """A minimal ASGI app that keeps what it is sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.seen.append((scope["path"], headers, message["body"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_webhooks_into_an_asgi_app(api: Api, replicate_fake: FakeReplicate) -> None:
    app = AsgiApp()
    replicate_fake.deliver_webhooks_to(app)
    body = {**ECHO, "webhook": "https://app.test/hooks/replicate?x=1"}
    created = await create(api, body)
    await replicate_fake.wait_for_prediction(created["id"])
    await replicate_fake.drain_webhooks()
    assert [path for path, _, _ in app.seen] == ["/hooks/replicate", "/hooks/replicate"]
    _, headers, payload = app.seen[-1]
    assert json.loads(payload)["status"] == "succeeded"
    assert replicate_fake.webhook_deliveries[-1].status == 204
    from replicate_async.testing import verify_webhook

    assert verify_webhook(replicate_fake.webhook_secret, headers, payload)


async def test_webhooks_into_an_aiohttp_app(api: Api, replicate_fake: FakeReplicate) -> None:
    seen: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(await request.json())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    replicate_fake.deliver_webhooks_to(app, host="my-app.internal")
    created = await create(api, {**ECHO, "webhook": "http://my-app.internal/hook"})
    await replicate_fake.wait_for_prediction(created["id"])
    await replicate_fake.drain_webhooks()
    assert [s["status"] for s in seen][-1] == "succeeded"
    assert all(d.ok for d in replicate_fake.webhook_deliveries)


async def test_a_failing_in_process_receiver_is_retried_and_recorded(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("receiver bug")

    replicate_fake.deliver_webhooks_to(broken)
    body = {**ECHO, "webhook": "http://app.test/h", "webhook_events_filter": ["completed"]}
    created = await create(api, body)
    await replicate_fake.wait_for_prediction(created["id"])
    await replicate_fake.drain_webhooks()
    errors = [d.error for d in replicate_fake.webhook_deliveries]
    assert errors == ["RuntimeError: receiver bug"] * 3
    assert replicate_fake.server_errors == []


# ------------------------------------------------------------------ inspect endpoint


@pytest.mark.replicate_fake(inspect_endpoint=True)
async def test_the_read_only_log_endpoint(api: Api, replicate_fake: FakeReplicate) -> None:
    await create(api, {**ECHO, "webhook": "http://127.0.0.1:9/nothing-listens"})
    await replicate_fake.wait_idle()
    await replicate_fake.drain_webhooks()
    log = (await api.get(f"{replicate_fake.origin}/_fake/requests", auth=False)).json()
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("POST", "/v1/predictions", 201)
    ]
    assert log[0]["headers"]["authorization"] == "<redacted>"
    assert json.loads(log[0]["body"])["version"] == "fake/echo"
    assert (
        await api.get(f"{replicate_fake.origin}/_fake/requests?since=1", auth=False)
    ).json() == []
    hooks = (await api.get(f"{replicate_fake.origin}/_fake/webhooks", auth=False)).json()
    assert hooks
    assert all(h["error"] for h in hooks)
    assert len(replicate_fake.requests) == 1  # looking is not logged


async def test_the_log_endpoint_is_off_by_default(api: Api, replicate_fake: FakeReplicate) -> None:
    assert (await api.get(f"{replicate_fake.origin}/_fake/requests")).status == 404


# ------------------------------------------------------------------------ options


def test_every_option_is_a_flag_of_both_command_lines() -> None:
    import click

    from replicate_async.cli.tools import fake_server
    from replicate_async.testing import FakeOptions
    from replicate_async.testing._serve import _parser, _specs, options_from

    args = [
        "--rate-limits", "--create-limit-per-minute", "6", "--create-burst", "1",
        "--other-burst", "5", "--webhook-throttle", "0", "--webhook-max-attempts", "1",
        "--no-auth", "--seed", "7", "--body-timeout", "2.5", "--inspect-endpoint",
    ]  # fmt: skip
    expected = {
        "rate_limits_enabled": True, "create_limit_per_minute": 6, "create_burst": 1,
        "other_burst": 5, "webhook_throttle": 0.0, "webhook_max_attempts": 1,
        "require_auth": False, "seed": 7, "body_timeout": 2.5, "inspect_endpoint": True,
    }  # fmt: skip
    assert options_from(vars(_parser().parse_args(args))) == expected
    ctx = fake_server.make_context("fake-server", list(args))
    assert options_from(ctx.params) == expected
    assert options_from(vars(_parser().parse_args(["--no-seed"]))) == {"seed": False}
    flags = {opt for param in fake_server.params for opt in param.opts}
    declared = {dest for _, dest, _ in _specs()} - {"no_seed"}
    assert declared == set(FakeOptions.__dataclass_fields__)
    assert {flag for flag, _, _ in _specs()} <= flags
    with pytest.raises(click.UsageError, match="page_size"):
        fake_server.main(["--page-size", "0"], standalone_mode=False)


async def test_the_client_waits_out_a_429_on_the_same_manual_clock() -> None:
    clock = ManualClock()
    options = {"rate_limits_enabled": True, "create_limit_per_minute": 6, "create_burst": 1}
    async with FakeReplicate(clock=clock, **options) as fake, fake.client(clock=clock) as client:
        await client.predictions.create(version="fake/echo", input={"n": 1})
        second = asyncio.create_task(client.predictions.create(version="fake/echo", input={"n": 2}))
        await clock.wait_for_sleepers(1)  # the client is pacing itself, on virtual time
        assert not second.done()
        await clock.advance_async(120)
        created = await asyncio.wait_for(second, 5)
        assert created.input == {"n": 2}
        statuses = [r.status for r in fake.requests]
        assert statuses[0] == statuses[-1] == 201
        assert set(statuses[1:-1]) <= {429}
