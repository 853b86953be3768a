"""Webhook signature verification, parsing and the aiohttp handler (replicate_async.webhooks)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from replicate_async.exceptions import InvalidArgumentError, WebhookVerificationError
from replicate_async.webhooks import (
    parse_prediction,
    parse_training,
    sign,
    verify,
    verify_request,
    webhook_handler,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


VECTOR = _example("webhook-signature-test-vector.json")
SECRET: str = VECTOR["secret"]
HEADERS: dict[str, str] = VECTOR["headers"]
BODY: str = VECTOR["body"]
TIMESTAMP = int(HEADERS["webhook-timestamp"])
PREDICTION_BODY = (EXAMPLES / "prediction-webhook-succeeded-official-model.json").read_bytes()
OTHER_SECRET: str = _example("webhooks-default-secret.json")["key"]


def _verify_error(headers: Any, body: bytes | str = BODY, **kwargs: Any) -> str:
    kwargs.setdefault("tolerance", None)
    with pytest.raises(WebhookVerificationError) as info:
        verify(headers, body, kwargs.pop("secret", SECRET), **kwargs)
    message = str(info.value)
    assert SECRET not in message
    assert SECRET.removeprefix("whsec_") not in message
    return message


# --------------------------------------------------------------------------- the test vector


def test_vector_signed_content_and_signature() -> None:
    assert VECTOR["signed_content"] == f"{HEADERS['webhook-id']}.{TIMESTAMP}.{BODY}"
    assert HEADERS["webhook-signature"] == "v1," + VECTOR["expected_signature_base64"]
    assert (
        sign(BODY, SECRET, msg_id=HEADERS["webhook-id"], timestamp=TIMESTAMP)
        == HEADERS["webhook-signature"]
    )


def test_vector_verifies_without_tolerance() -> None:
    verify(HEADERS, BODY, SECRET, tolerance=None)
    verify(HEADERS, BODY.encode(), SECRET, tolerance=None)


@pytest.mark.parametrize("skew", [-300, -10, 0, 10, 300])
def test_vector_verifies_near_its_timestamp(skew: int) -> None:
    verify(HEADERS, BODY, SECRET, now=TIMESTAMP + skew)


def test_vector_is_stale_today_with_default_tolerance() -> None:
    assert "too old" in _verify_error(HEADERS, tolerance=300)


def test_secret_without_prefix_is_accepted() -> None:
    verify(HEADERS, BODY, SECRET.removeprefix("whsec_"), tolerance=None)
    verify(HEADERS, BODY, f" {SECRET}\n", tolerance=None)


@pytest.mark.parametrize(
    "headers",
    [
        {k.upper(): v for k, v in HEADERS.items()},
        {k.title(): v for k, v in HEADERS.items()},
        CIMultiDict(HEADERS),
        CIMultiDict({k.upper(): v for k, v in HEADERS.items()}),
    ],
    ids=["upper-dict", "title-dict", "cimultidict", "upper-cimultidict"],
)
def test_header_names_are_case_insensitive(headers: Any) -> None:
    verify(headers, BODY, SECRET, tolerance=None)


# --------------------------------------------------------------------------- failures


def test_wrong_secret() -> None:
    assert "no webhook signature matches" in _verify_error(HEADERS, secret=OTHER_SECRET)


@pytest.mark.parametrize("body", [BODY + " ", BODY.replace("2432", "2433"), "", BODY.encode()[:-1]])
def test_altered_body(body: str | bytes) -> None:
    assert "no webhook signature matches" in _verify_error(HEADERS, body)


def test_altered_id() -> None:
    headers = {**HEADERS, "webhook-id": HEADERS["webhook-id"] + "x"}
    assert "no webhook signature matches" in _verify_error(headers)


def test_altered_timestamp() -> None:
    headers = {**HEADERS, "webhook-timestamp": str(TIMESTAMP + 1)}
    assert "no webhook signature matches" in _verify_error(headers)


def test_stale_timestamp() -> None:
    message = _verify_error(HEADERS, tolerance=300, now=TIMESTAMP + 301)
    assert "too old" in message


def test_future_timestamp() -> None:
    message = _verify_error(HEADERS, tolerance=300, now=TIMESTAMP - 301)
    assert "in the future" in message


def test_custom_tolerance() -> None:
    verify(HEADERS, BODY, SECRET, tolerance=3600, now=TIMESTAMP + 3000)
    assert "too old" in _verify_error(HEADERS, tolerance=10, now=TIMESTAMP + 11)


def test_default_now_is_the_current_time() -> None:
    now = int(time.time())
    headers = {
        "webhook-id": "msg_now",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(BODY, SECRET, msg_id="msg_now", timestamp=now),
    }
    verify(headers, BODY, SECRET)
    stale = {**headers, "webhook-timestamp": str(now - 3600)}
    stale["webhook-signature"] = sign(BODY, SECRET, msg_id="msg_now", timestamp=now - 3600)
    assert "too old" in _verify_error(stale, tolerance=300)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header(name: str) -> None:
    headers = {k: v for k, v in HEADERS.items() if k != name}
    assert _verify_error(headers) == f"missing webhook header(s): {name}"
    assert _verify_error({**HEADERS, name: ""}) == f"missing webhook header(s): {name}"


def test_all_headers_missing() -> None:
    assert _verify_error({}) == (
        "missing webhook header(s): webhook-id, webhook-timestamp, webhook-signature"
    )


@pytest.mark.parametrize(
    "timestamp",
    [
        "abc",
        "1614265330.0",
        "-1614265330",
        " 1614265330",
        "+1614265330",
        "1_614_265_330",
        "١٦١٤٢٦٥٣٣٠",
        "9" * 25,
    ],
)
def test_non_integer_timestamp(timestamp: str) -> None:
    message = _verify_error({**HEADERS, "webhook-timestamp": timestamp})
    assert "not an integer" in message


_GOOD = VECTOR["expected_signature_base64"]


@pytest.mark.parametrize(
    ("signature", "expected"),
    [
        ("garbage", "has no 'v1,<base64>' entry"),
        ("v1", "has no 'v1,<base64>' entry"),
        (" ", "has no 'v1,<base64>' entry"),
        (",abc", "has no 'v1,<base64>' entry"),
        ("v2," + _GOOD, "has no 'v1,<base64>' entry"),
        ("v1a," + _GOOD, "has no 'v1,<base64>' entry"),
        ("V1," + _GOOD, "has no 'v1,<base64>' entry"),
        ("v1,é", "has no 'v1,<base64>' entry"),
        ("v1,", "has no 'v1,<base64>' entry"),
        ("v1," + _GOOD + "=", "no webhook signature matches"),
        ("v1:" + _GOOD, "has no 'v1,<base64>' entry"),
    ],
)
def test_malformed_or_foreign_signature_header(signature: str, expected: str) -> None:
    assert expected in _verify_error({**HEADERS, "webhook-signature": signature})


def test_other_versions_are_ignored_even_if_they_carry_the_right_value() -> None:
    good = VECTOR["expected_signature_base64"]
    headers = {**HEADERS, "webhook-signature": f"v1a,{good} v2,{good} v1,{good[::-1]}"}
    assert "no webhook signature matches" in _verify_error(headers)


def test_second_of_several_signatures_matches() -> None:
    wrong = base64.b64encode(b"\0" * 32).decode()
    good = HEADERS["webhook-signature"]
    for value in (f"v1,{wrong} {good}", f"v1a,xyz {good}", f"v1,{wrong}  {good} v1,{wrong}"):
        verify({**HEADERS, "webhook-signature": value}, BODY, SECRET, tolerance=None)


@pytest.mark.parametrize("secret", ["whsec_not base64!!", "whsec_abc", "whsec_", "", "%%%%"])
def test_invalid_secret(secret: str) -> None:
    with pytest.raises(WebhookVerificationError, match="secret") as info:
        verify(HEADERS, BODY, secret, tolerance=None)
    if secret.removeprefix("whsec_"):
        assert secret.removeprefix("whsec_") not in str(info.value)
    with pytest.raises(WebhookVerificationError, match="secret"):
        sign(BODY, secret, msg_id="msg", timestamp=0)


# --------------------------------------------------------------------------- sign/verify


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=512),
    msg_id=st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s.isprintable()),
    key=st.binary(min_size=1, max_size=64),
    timestamp=st.integers(min_value=0, max_value=2**40),
)
def test_sign_verify_roundtrip(body: bytes, msg_id: str, key: bytes, timestamp: int) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(body, secret, msg_id=msg_id, timestamp=timestamp),
    }
    verify(headers, body, secret, now=timestamp)
    with pytest.raises(WebhookVerificationError):
        verify(headers, body + b"\0", secret, now=timestamp)


@settings(max_examples=100, deadline=None)
@given(body=st.text(max_size=200))
def test_str_body_is_signed_as_utf8(body: str) -> None:
    signature = sign(body, SECRET, msg_id="msg_1", timestamp=TIMESTAMP)
    assert signature == sign(body.encode(), SECRET, msg_id="msg_1", timestamp=TIMESTAMP)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(TIMESTAMP)}
    verify({**headers, "webhook-signature": signature}, body.encode(), SECRET, tolerance=None)


# --------------------------------------------------------------------------- parsing


def test_parse_prediction() -> None:
    from replicate_async.models import Prediction

    prediction = parse_prediction(PREDICTION_BODY)
    assert isinstance(prediction, Prediction)
    assert prediction.id == "vcscvthbaxrm80cq9xqtcbaw4m"
    assert prediction.status == "succeeded"
    assert prediction.model == "black-forest-labs/flux-kontext-pro"
    assert prediction.output.startswith("https://replicate.delivery/")
    assert prediction.webhook_events_filter == ["start", "completed", "logs", "output"]
    assert parse_prediction(PREDICTION_BODY.decode()) == prediction


def test_parse_training() -> None:
    from replicate_async.models import Training

    training = parse_training((EXAMPLES / "training-get-succeeded-spec-example.json").read_bytes())
    assert isinstance(training, Training)
    assert training.id == "zz4ibbonubfz7carwiefibzgga"
    assert training.status == "succeeded"
    assert training.output == {"version": "...", "weights": "..."}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"status": "succeeded"}', b"\xff"])
def test_parse_rejects_bad_bodies(body: bytes) -> None:
    with pytest.raises(WebhookVerificationError, match="webhook body"):
        parse_prediction(body)
    with pytest.raises(WebhookVerificationError, match="webhook body"):
        parse_training(body)


# --------------------------------------------------------------------------- aiohttp


def _signed_headers(body: bytes, msg_id: str, secret: str = SECRET) -> dict[str, str]:
    now = int(time.time())
    return {
        "Content-Type": "application/json",
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(now),
        "Webhook-Signature": sign(body, secret, msg_id=msg_id, timestamp=now),
    }


@pytest.fixture
def received() -> list[Any]:
    return []


async def _client(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    app.router.add_post("/hook", handler)
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
async def client(received: list[Any]) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async def on_prediction(prediction: Any) -> None:
        received.append(prediction)

    async for c in _client(webhook_handler(SECRET, on_prediction)):
        yield c


async def test_handler_accepts_a_valid_delivery(
    client: TestClient[web.Request, web.Application], received: list[Any]
) -> None:
    from replicate_async.models import Prediction

    resp = await client.post(
        "/hook", data=PREDICTION_BODY, headers=_signed_headers(PREDICTION_BODY, "msg_1")
    )
    assert resp.status == 200
    assert len(received) == 1
    assert isinstance(received[0], Prediction)
    assert received[0].id == "vcscvthbaxrm80cq9xqtcbaw4m"


async def test_handler_deduplicates_by_webhook_id(
    client: TestClient[web.Request, web.Application], received: list[Any]
) -> None:
    headers = _signed_headers(PREDICTION_BODY, "msg_dup")
    for _ in range(3):
        resp = await client.post("/hook", data=PREDICTION_BODY, headers=headers)
        assert resp.status == 200
    assert len(received) == 1
    # The same body under another delivery id is a different delivery.
    other = _signed_headers(PREDICTION_BODY, "msg_other")
    assert (await client.post("/hook", data=PREDICTION_BODY, headers=other)).status == 200
    assert len(received) == 2


async def test_handler_rejects_a_bad_signature(
    client: TestClient[web.Request, web.Application], received: list[Any]
) -> None:
    headers = _signed_headers(PREDICTION_BODY, "msg_bad", secret=OTHER_SECRET)
    resp = await client.post("/hook", data=PREDICTION_BODY, headers=headers)
    assert resp.status == 400
    text = await resp.text()
    assert SECRET.removeprefix("whsec_") not in text
    assert OTHER_SECRET.removeprefix("whsec_") not in text
    assert received == []


async def test_handler_rejects_tampered_body_missing_headers_and_stale(
    client: TestClient[web.Request, web.Application], received: list[Any]
) -> None:
    headers = _signed_headers(PREDICTION_BODY, "msg_t")
    tampered = PREDICTION_BODY.replace(b"succeeded", b"failed")
    assert (await client.post("/hook", data=tampered, headers=headers)).status == 400
    assert (await client.post("/hook", data=PREDICTION_BODY)).status == 400
    stale_ts = int(time.time()) - 3600
    stale = {
        "Webhook-Id": "msg_s",
        "Webhook-Timestamp": str(stale_ts),
        "Webhook-Signature": sign(PREDICTION_BODY, SECRET, msg_id="msg_s", timestamp=stale_ts),
    }
    assert (await client.post("/hook", data=PREDICTION_BODY, headers=stale)).status == 400
    # A rejected delivery does not poison the id: the genuine one still goes through.
    assert (await client.post("/hook", data=PREDICTION_BODY, headers=headers)).status == 200
    assert len(received) == 1


async def test_handler_rejects_a_signed_body_that_is_not_a_prediction(
    client: TestClient[web.Request, web.Application], received: list[Any]
) -> None:
    body = b'{"hello": "world"}'
    resp = await client.post("/hook", data=body, headers=_signed_headers(body, "msg_x"))
    assert resp.status == 400
    assert received == []


async def test_handler_forgets_the_id_when_the_callback_fails() -> None:
    calls: list[str] = []

    async def on_prediction(prediction: Any) -> None:
        calls.append(prediction.id)
        if len(calls) == 1:
            raise RuntimeError("database down")

    async for client in _client(webhook_handler(SECRET, on_prediction)):
        headers = _signed_headers(PREDICTION_BODY, "msg_retry")
        assert (await client.post("/hook", data=PREDICTION_BODY, headers=headers)).status == 500
        assert (await client.post("/hook", data=PREDICTION_BODY, headers=headers)).status == 200
        assert (await client.post("/hook", data=PREDICTION_BODY, headers=headers)).status == 200
    assert len(calls) == 2


async def test_handler_with_async_secret_and_bounded_memory() -> None:
    calls: list[str] = []
    secret_fetches = 0

    async def get_secret() -> str:
        nonlocal secret_fetches
        secret_fetches += 1
        return SECRET

    async def on_prediction(prediction: Any) -> None:
        calls.append(prediction.id)

    handler = webhook_handler(get_secret, on_prediction, max_remembered=2)
    async for client in _client(handler):
        for msg_id in ("a", "b", "a", "c", "a"):
            headers = _signed_headers(PREDICTION_BODY, msg_id)
            assert (await client.post("/hook", data=PREDICTION_BODY, headers=headers)).status == 200
    # The repeat of "a" refreshes it, so "c" evicts "b" and the last "a" is still a repeat.
    assert len(calls) == 3
    assert secret_fetches == 5


async def test_lru_evicts_the_least_recently_seen_id() -> None:
    calls: list[str] = []

    async def on_prediction(prediction: Any) -> None:
        calls.append(prediction.id)

    handler = webhook_handler(SECRET, on_prediction, max_remembered=2)
    async for client in _client(handler):
        for msg_id in ("a", "b", "c", "a", "b"):
            headers = _signed_headers(PREDICTION_BODY, msg_id)
            assert (await client.post("/hook", data=PREDICTION_BODY, headers=headers)).status == 200
    # a, b, c (evicts a), a again (evicts b), b again: five deliveries, five calls.
    assert len(calls) == 5


def test_max_remembered_must_be_positive() -> None:
    async def on_prediction(prediction: Any) -> None:
        return None

    with pytest.raises(ValueError, match="positive"):
        webhook_handler(SECRET, on_prediction, max_remembered=0)


async def test_verify_request_returns_the_raw_body() -> None:
    async def echo(request: web.Request) -> web.Response:
        try:
            body = await verify_request(request, SECRET, tolerance=None)
        except WebhookVerificationError as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(body=body)

    raw = BODY.encode()
    async for client in _client(echo):
        resp = await client.post("/hook", data=raw, headers=HEADERS)
        assert resp.status == 200
        assert await resp.read() == raw
        resp = await client.post("/hook", data=raw + b" ", headers=HEADERS)
        assert resp.status == 400
        assert "no webhook signature matches" in await resp.text()


# --------------------------------------------------------------------------- hostile arguments


@pytest.mark.parametrize(
    "options",
    [
        {"tolerance": float("nan")},
        {"tolerance": float("inf")},
        {"tolerance": -1},
        {"now": float("nan")},
        {"now": float("inf")},
        {"now": float("-inf")},
        {"now": 10**400},
    ],
    ids=repr,
)
def test_non_finite_tolerance_or_now_is_rejected_not_a_disabled_window(
    options: dict[str, Any],
) -> None:
    """A NaN made every comparison False: the stale vector verified. Now it is refused."""
    with pytest.raises(InvalidArgumentError) as info:
        verify(HEADERS, BODY, SECRET, **options)
    assert next(iter(options)) in str(info.value)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((None, BODY, SECRET), "headers"),
        (([("webhook-id", "x")], BODY, SECRET), "headers"),
        ((HEADERS, None, SECRET), "body"),
        ((HEADERS, 12, SECRET), "body"),
        ((HEADERS, BODY, None), "secret"),
        ((HEADERS, BODY, SECRET.encode()), "secret"),
    ],
    ids=["headers=None", "headers=list", "body=None", "body=int", "secret=None", "secret=bytes"],
)
def test_wrong_typed_arguments_raise_type_error_naming_them(
    args: tuple[Any, ...], named: str
) -> None:
    with pytest.raises(TypeError, match=named):
        verify(*args, tolerance=None)


@pytest.mark.parametrize(
    "options",
    [{"tolerance": "300"}, {"now": "1700000000"}, {"tolerance": True}],
    ids=repr,
)
def test_wrong_typed_tolerance_or_now_raise_type_error(options: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match=next(iter(options))):
        verify(HEADERS, BODY, SECRET, **options)


@pytest.mark.parametrize(
    "headers",
    [
        {**HEADERS, "webhook-id": b"msg"},
        {**HEADERS, "webhook-timestamp": TIMESTAMP},
        {**HEADERS, "webhook-signature": None, "Webhook-Signature": 5},
        {**HEADERS, "webhook-id": "\udc80"},
    ],
    ids=["id=bytes", "timestamp=int", "signature=int", "id=surrogate"],
)
def test_non_text_header_values_are_a_failed_verification(headers: dict[str, Any]) -> None:
    _verify_error(headers)


def test_a_body_with_a_lone_surrogate_is_a_failed_verification() -> None:
    _verify_error(HEADERS, "\udc80")


def test_bytearray_and_memoryview_bodies_verify_like_bytes() -> None:
    verify(HEADERS, bytearray(BODY.encode()), SECRET, tolerance=None)
    verify(HEADERS, memoryview(BODY.encode()), SECRET, tolerance=None)


def test_handler_arguments_are_checked_when_it_is_built() -> None:
    async def on_prediction(prediction: Any) -> None:
        return None

    with pytest.raises(InvalidArgumentError, match="tolerance"):
        webhook_handler(SECRET, on_prediction, tolerance=float("nan"))
    with pytest.raises(TypeError, match="secret"):
        webhook_handler(b"whsec_x", on_prediction)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_remembered"):
        webhook_handler(SECRET, on_prediction, max_remembered=1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "p", "input": ' + b'{"a": ' * 5_000 + b"1" + b"}" * 5_000 + b"}",
        b"\xff\xfe not utf-8",
        b'{"id": "p", "status": NaN}',
        b"",
    ],
    ids=["100k deep array", "5k deep input", "not utf-8", "NaN", "empty"],
)
async def test_handler_answers_400_to_undecodable_or_too_deep_signed_bodies(
    body: bytes, received: list[Any]
) -> None:
    """Signed with the right secret, so only the body decides: never a 500."""

    async def on_prediction(prediction: Any) -> None:
        received.append(prediction)

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/hook", webhook_handler(SECRET, on_prediction))
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/hook", data=body, headers=_signed_headers(body, "msg_deep"))
        assert resp.status == 400
        assert await resp.text() == "invalid webhook delivery"
    assert received == []


@pytest.mark.parametrize("body", [b"[" * 100_000 + b"]" * 100_000, b'{"a": NaN}'])
def test_parse_prediction_turns_decoder_failures_into_verification_errors(body: bytes) -> None:
    with pytest.raises(WebhookVerificationError):
        parse_prediction(body)


async def test_handler_answers_400_to_too_deep_bodies_with_the_stdlib_decoder(
    monkeypatch: pytest.MonkeyPatch, received: list[Any]
) -> None:
    """Without orjson, a deep body is a RecursionError inside the decoder: still a 400."""
    import replicate_async._converter as converter

    monkeypatch.setattr(converter, "loads", lambda data: json.loads(data))

    async def on_prediction(prediction: Any) -> None:
        received.append(prediction)

    body = b"[" * 100_000 + b"]" * 100_000
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/hook", webhook_handler(SECRET, on_prediction))
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/hook", data=body, headers=_signed_headers(body, "msg_std"))
        assert resp.status == 400
    assert received == []
