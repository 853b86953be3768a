"""Static types of the SDK conventions: ``to_dict``/``to_json``, ``request_id``,
``webhooks.unwrap`` and the client's new keywords. Checked by the ``mypy --strict`` run over
this folder (tests/typing/test_call_options_typing.py); each ``# type: ignore[...]`` must be
needed, so it proves a checker refuses that call, and pytest shows it refused at run time.
"""

from __future__ import annotations

import time
from typing import Any, assert_type

import pytest

from replicate_async import Account, AsyncReplicate, NotFoundError, Prediction, Training
from replicate_async.models import Page
from replicate_async.webhooks import sign, unwrap

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_to_dict_and_to_json_types() -> None:
    prediction = Prediction(id="p", status="starting")
    assert_type(prediction.to_dict(), dict[str, Any])
    assert_type(prediction.to_dict(mode="python", exclude_unset=True), dict[str, Any])
    assert_type(prediction.to_json(indent=2), str)
    assert_type(Page(results=[prediction]).to_dict(), dict[str, Any])
    with pytest.raises(ValueError, match="mode"):
        prediction.to_dict(mode="yaml")  # type: ignore[arg-type]


def test_request_id_type() -> None:
    error = NotFoundError(
        "missing", method="GET", url="u", status=404, headers={"CF-Ray": "r"}, body=None
    )
    assert_type(error.request_id, str | None)
    assert error.request_id == "r"


def test_unwrap_types() -> None:
    body = b'{"id": "t", "status": "succeeded"}'
    stamp = int(time.time())
    headers = {
        "webhook-id": "m",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(body, SECRET, msg_id="m", timestamp=stamp),
    }
    assert_type(unwrap(headers, body, SECRET), Prediction)
    assert_type(unwrap(headers, body, SECRET, into=Training), Training)


async def _endpoint_calls(client: AsyncReplicate) -> None:
    """Never run: mypy checks what ``client.get/post/patch/delete`` return."""
    assert_type(await client.get("account"), Any)
    assert_type(await client.get("account", cast_to=Account), Account)
    assert_type(await client.get("account", cast_to=str, timeout=5), str)
    assert_type(await client.post("predictions", body={}, cast_to=Prediction), Prediction)
    assert_type(await client.patch("deployments/a/b", body={}, cast_to=_count), int)
    assert_type(await client.delete("deployments/a/b"), Any)
    await client.get("account", cast_to=Account, retries=3)  # type: ignore[call-overload]


def _count(data: Any) -> int:
    return len(data)


def test_client_keywords() -> None:
    client = AsyncReplicate(
        api_token="t", default_headers={"X": "1"}, default_query={"a": "b"}, trust_env=False
    )
    assert_type(client.with_options(default_headers={"X": "2"}), AsyncReplicate)
    with pytest.raises(TypeError, match="trust_env"):
        AsyncReplicate(api_token="t", trust_env="no")  # type: ignore[arg-type]
