"""Rate-limit hints as the server sends them, and as a broken proxy might: what is read."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from replicate_async._core.retry import parse_retry_after
from replicate_async._core.throttle import remaining_hint, request_kind

BASE = "https://api.replicate.com/v1/"


def _headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in values.items()}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0), ("599", 599), ("59999", 59999), ("999999999", 999999999), (None, None)],
)
def test_ratelimit_remaining_is_read_when_it_is_a_plain_count(
    value: str | None, expected: int | None
) -> None:
    assert remaining_hint(value) == expected


@pytest.mark.parametrize(
    "value", ["", "²", "١٢", "9" * 10, "9" * 5000, "-1", "+1", "1.0", "1_0", " 1", "0x1"]
)
def test_ratelimit_remaining_that_is_not_a_plain_count_is_ignored(value: str) -> None:
    assert remaining_hint(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("7", 7.0), ("1.5", 1.5), (" 3 ", 3.0), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0)],
)
def test_retry_after_seconds_and_dates(value: str, expected: float) -> None:
    assert parse_retry_after(_headers(retry_after=value)) == expected


@pytest.mark.parametrize(
    "value", ["²", "١٢", "9" * 5000, "1e400", "1e3", "nan", "inf", "-1", "1_0", "Mon, 99 X"]
)
def test_unusable_retry_after_falls_back_to_the_body(value: str) -> None:
    assert parse_retry_after(_headers(retry_after=value)) is None
    assert parse_retry_after(_headers(retry_after=value), {"retry_after": 4}) == 4.0
    assert parse_retry_after(_headers(retry_after_ms=value)) is None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.text(alphabet="0123456789.", max_size=6000))
def test_no_header_value_makes_the_parsers_raise(value: str) -> None:
    parsed = remaining_hint(value)
    assert parsed is None or 0 <= parsed < 10**9
    for name in ("retry_after", "retry_after_ms"):
        seconds = parse_retry_after(_headers(**{name: value}))
        assert seconds is None or 0 <= seconds < 10**13


@pytest.mark.parametrize(
    ("method", "url", "kind"),
    [
        ("POST", f"{BASE}predictions", "create"),
        ("POST", f"{BASE}models/a/b/predictions", "create"),
        ("POST", f"{BASE}predictions/abc/cancel", "other"),
        ("GET", f"{BASE}predictions/abc", "prediction_get"),
        ("GET", f"{BASE}predictions/a%2Fb", "prediction_get"),
        ("GET", f"{BASE}predictions", "other"),
        ("GET", f"{BASE}predictions/", "other"),
        ("GET", f"{BASE}predictions/abc/cancel", "other"),
        ("GET", f"{BASE}predictions?cursor=x", "other"),
        ("GET", f"{BASE}predictions/abc?x=1", "other"),
        ("GET", "https://elsewhere.example/v1/predictions/abc", "other"),
        ("GET", f"{BASE}models", "other"),
    ],
)
def test_request_kinds(method: str, url: str, kind: str) -> None:
    assert request_kind(method, url, BASE) == kind
