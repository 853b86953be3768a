"""Fuzzed command-line values never end in a traceback, and exit only with a documented
status. The command line runs in-process (click's runner) against the fake, so a few
hundred runs take seconds; each property is bounded in examples and time."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import Invoke

#: 0 ok, 1 API/model error, 2 bad usage, 3 still running, 130 interrupted (README, --help).
DOCUMENTED = {0, 1, 2, 3, 130}

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Characters that matter to the parsers (separators, JSON, --jq syntax, @files, controls).
SYNTAX = st.sampled_from(list("=:@-.[]{},\"'0123456789aZ_ \t\r\n\x00\\"))
TEXT = st.one_of(st.text(max_size=40), st.text(SYNTAX, max_size=40))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


def _assert_clean(result: Any) -> None:
    assert result.exit_code in DOCUMENTED, (result.exit_code, result.output)
    assert "Traceback" not in result.stderr
    if result.exit_code not in (0, 130):
        assert result.stderr.strip(), "a failure says why"


@FUZZ
@given(pairs=st.lists(TEXT, min_size=0, max_size=3))
def test_input_pairs(invoke: Invoke, pairs: list[str]) -> None:
    args = [arg for pair in pairs for arg in ("-i", pair)]
    _assert_clean(invoke("predictions", "create", "fake/upper", *args))


@FUZZ
@given(body=st.one_of(TEXT, JSON_VALUES.map(json.dumps)))
def test_input_json(invoke: Invoke, body: str) -> None:
    _assert_clean(invoke("predictions", "create", "fake/upper", "--input-json", "-", input=body))


@FUZZ
@given(expression=st.one_of(TEXT, st.text(st.sampled_from(list(".[]0123456789-,az")), max_size=60)))
def test_jq(invoke: Invoke, expression: str) -> None:
    _assert_clean(invoke("account", "--jq", expression))


@FUZZ
@given(header=TEXT)
def test_api_headers(invoke: Invoke, header: str) -> None:
    _assert_clean(invoke("api", "/v1/account", "-H", header))


@FUZZ
@given(field=TEXT)
def test_api_fields(invoke: Invoke, field: str) -> None:
    _assert_clean(invoke("api", "-X", "GET", "/v1/account", "-f", field))
