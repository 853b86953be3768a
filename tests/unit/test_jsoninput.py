"""The JSON-input check's one-loop path for plain trees agrees with the full walk."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from replicate_async import InvalidArgumentError
from replicate_async._checks.body import MAX_JSON_DEPTH, _check_json, check_json_input

#: Leaves the API takes, and the ones it cannot (NaN, infinities, ints past 64 bits,
#: lone surrogates, a bytes file, a type JSON has no form for).
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["\ud800", "caf\u00e9", b"raw bytes", object(), (1, 2)]),
)
keys = st.text(max_size=4) | st.sampled_from([1, "\udfff", "caf\u00e9"])
trees = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
#: A model input is an object: its values are where most problems sit.
inputs = st.dictionaries(keys, leaves | trees, max_size=6)


def _outcome(check: Any, value: Any) -> str:
    try:
        check(value)
    except (InvalidArgumentError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@settings(max_examples=400, deadline=None)
@given(inputs | trees)
@example({"a": math.nan})
@example({"a": -math.inf, "b": 1})
@example({"a": 2**64})
@example({"a": "\ud800"})
@example({"\ud800": 1})
@example({"a": [[{"b": math.inf}]]})
def test_the_plain_path_agrees_with_the_full_walk(value: Any) -> None:
    """Same verdict and the same message as the walk that names where a problem is."""
    full = _outcome(lambda v: _check_json(v, "input", 0, set()), value)
    assert _outcome(check_json_input, value) == full


def test_problems_are_still_named() -> None:
    with pytest.raises(InvalidArgumentError, match=r"input\['a'\]\[1\] is nan"):
        check_json_input({"a": [1, math.nan]})
    with pytest.raises(InvalidArgumentError, match=r"input\['n'\] is an integer outside"):
        check_json_input({"n": 2**64})


def test_cycles_and_depth_fall_back_to_the_full_walk() -> None:
    looped: list[Any] = []
    looped.extend([looped] * 10)  # a cycle met many times: no blow-up, a clear error
    with pytest.raises(InvalidArgumentError, match="contains itself"):
        check_json_input({"x": looped})
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = [deep]
    with pytest.raises(InvalidArgumentError, match="nested deeper"):
        check_json_input({"x": deep})
    shared = {"k": "v"}
    check_json_input({"a": shared, "b": [shared, shared]})  # shared, not cyclic: fine
