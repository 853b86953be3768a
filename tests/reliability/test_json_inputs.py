"""Model inputs are sent as valid JSON or refused before anything is sent.

Property: for any input (NaN and infinities, lone surrogates, integers of any size,
cycles, deep nesting), ``predictions.create``, ``run`` and ``stream`` either put valid
JSON carrying exactly that input on the wire, or raise ``InvalidArgumentError`` with no
request in the fake's log; and which of the two happens follows the documented rule
(``replicate_async._checks.body``), computed here independently. Before, a cycle or ~330
levels gave a ``RecursionError`` and a NaN a ``TypeError``.
"""

from __future__ import annotations

import json
import math
from contextlib import aclosing
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from replicate_async import (
    APIStatusError,
    AsyncReplicate,
    InvalidArgumentError,
    ModelError,
    StreamError,
)
from replicate_async._checks.body import MAX_JSON_DEPTH, check_json_input
from replicate_async.testing import FakeReplicate

PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Text with every code point, lone surrogates included.
any_text = st.text(st.characters(blacklist_categories=()), max_size=12)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2)
    | st.integers(min_value=-(2**63) - 2, max_value=-(2**63) + 2)
    | st.floats()
    | any_text
)
trees = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(any_text, inner, max_size=4)
    ),
    max_leaves=16,
)


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def _cycle(kind: str) -> Any:
    if kind == "list":
        items: list[Any] = [1]
        items.append(items)
        return items
    mapping: dict[str, Any] = {"a": 1}
    mapping["self"] = {"back": [mapping]}
    return mapping


#: Deep and cyclic values are drawn as a recipe (printing them would recurse).
recipes = (
    trees.map(lambda tree: ("tree", tree))
    | st.integers(min_value=1, max_value=2 * MAX_JSON_DEPTH).map(lambda n: ("nested", n))
    | st.integers(min_value=300, max_value=2000).map(lambda n: ("nested", n))
    | st.sampled_from(["list", "dict"]).map(lambda kind: ("cycle", kind))
)


def _build(recipe: tuple[str, Any]) -> Any:
    kind, arg = recipe
    if kind == "nested":
        return _nested(arg)
    if kind == "power of ten":
        return 10**arg
    return _cycle(arg) if kind == "cycle" else arg


# -- the oracle: the documented rule, written independently ---------------------------------


def _valid(value: Any, depth: int = 1, path: tuple[int, ...] = ()) -> bool:
    """Is ``{"x": value}`` valid per the documented rule? (``depth`` counts the input.)"""
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**64
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return not any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if id(value) in path:
        return False  # a cycle
    depth += 1
    if depth > MAX_JSON_DEPTH:
        return False
    inside = (*path, id(value))
    if isinstance(value, dict):
        return all(_valid(k, depth, inside) and _valid(v, depth, inside) for k, v in value.items())
    return all(_valid(item, depth, inside) for item in value)


def _as_sent(value: Any) -> Any:
    """What the value is once through JSON (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _as_sent(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_sent(v) for v in value]
    return value


def _strict_json(body: bytes) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {constant} was sent")

    return json.loads(body, parse_constant=refuse)


async def _stream(client: AsyncReplicate, input: dict[str, Any]) -> None:
    async with aclosing(client.stream("fake/tokens", input=input)) as events:
        async for _ in events:
            pass


async def _check(fake: FakeReplicate, call: Any, recipe: tuple[str, Any], path: str) -> None:
    value = _build(recipe)
    input = {"prompt": "hi", "text": "hi", "x": value}
    fake.clear_requests()
    valid = _valid(value)
    refused: InvalidArgumentError | None = None
    async with fake.client(max_retries=0) as client:
        try:
            await call(client, input)
        except InvalidArgumentError as exc:
            refused = exc
        except (APIStatusError, ModelError, StreamError):
            pass  # the server's answer to what was sent: what was sent is checked below
    if refused is not None:
        assert not valid, f"a valid input was refused: {refused}"
        assert fake.requests == []
        return
    assert valid, "an invalid input was sent"
    creates = [r for r in fake.requests if r.method == "POST" and r.path == path]
    assert len(creates) == 1
    assert _strict_json(creates[0].body)["input"] == _as_sent(input)


@PROPERTY
@given(recipe=recipes)
@example(recipe=("tree", math.nan))
@example(recipe=("tree", [1.0, {"y": -math.inf}]))
@example(recipe=("tree", "\udc80"))
@example(recipe=("tree", {"\ud800": 1}))
@example(recipe=("tree", 2**64))
@example(recipe=("tree", -(2**63) - 1))
@example(recipe=("power of ten", 5000))  # too many digits for str()
@example(recipe=("nested", MAX_JSON_DEPTH - 1))
@example(recipe=("nested", MAX_JSON_DEPTH))
@example(recipe=("nested", 330))
@example(recipe=("cycle", "list"))
async def test_predictions_create_sends_valid_json_or_refuses(
    replicate_fake: FakeReplicate, recipe: tuple[str, Any]
) -> None:
    version = replicate_fake.latest_version_id("fake/echo")

    async def create(client: AsyncReplicate, input: dict[str, Any]) -> Any:
        return await client.predictions.create(version=version, input=input)

    await _check(replicate_fake, create, recipe, "/v1/predictions")


@PROPERTY
@given(recipe=recipes)
@example(recipe=("tree", math.inf))
@example(recipe=("cycle", "dict"))
@example(recipe=("nested", 1000))
async def test_run_sends_valid_json_or_refuses(
    replicate_fake: FakeReplicate, recipe: tuple[str, Any]
) -> None:
    async def run(client: AsyncReplicate, input: dict[str, Any]) -> Any:
        return await client.run("fake/echo", input=input, timeout=30)

    await _check(replicate_fake, run, recipe, "/v1/models/fake/echo/predictions")


@PROPERTY
@given(recipe=recipes)
@example(recipe=("tree", math.nan))
@example(recipe=("tree", "\udfff"))
@example(recipe=("cycle", "list"))
async def test_stream_sends_valid_json_or_refuses(
    replicate_fake: FakeReplicate, recipe: tuple[str, Any]
) -> None:
    await _check(replicate_fake, _stream, recipe, "/v1/models/fake/tokens/predictions")


# -- the rule itself, case by case ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (math.nan, "nan"),
        ({"a": [math.inf]}, "inf"),
        ("\udc80", "surrogate"),
        ({"\udc80": 1}, "surrogate"),
        (2**64, "64-bit"),
        (_nested(MAX_JSON_DEPTH + 1), f"deeper than {MAX_JSON_DEPTH}"),
        (_cycle("list"), "contains itself"),
    ],
    ids=["nan", "inf", "surrogate", "surrogate key", "big int", "too deep", "cycle"],
)
def test_each_refusal_names_where_and_why(value: Any, words: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_json_input({"x": value})
    assert words in str(info.value)
    assert "input['x']" in str(info.value)


@pytest.mark.parametrize("value", [object(), {1, 2}, {1: "a"}, print, type])
def test_values_json_has_no_form_for_are_type_errors_naming_where(value: Any) -> None:
    with pytest.raises(TypeError, match=r"input\['x'\]"):
        check_json_input({"x": value})


def test_files_are_allowed_anywhere_in_an_input(tmp_path: Any) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"x")
    check_json_input({"a": [b"bytes", bytearray(b"x"), memoryview(b"x"), path, {"p": path}]})


def test_a_shared_subtree_is_not_a_cycle() -> None:
    shared = [1, 2]
    check_json_input({"a": shared, "b": shared, "c": [shared, shared]})
