"""Model schemas are untrusted input: generated hostile schemas and inputs through every
call that walks one, under a watchdog that measures how long the event loop is blocked.

Recursive, deep, wide, huge enums, catastrophic patterns and wrong types in every keyword:
every call returns or raises the documented type (``InputValidationError`` from a model
function's check, ``SchemaError`` from ``flatten``), and no callback holds the event loop
for more than 100 ms of CPU. The same schemas through ``codegen``: every module imports,
and a batch of them passes ``mypy --strict``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import logging
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

# Imported here, not by the first generated module inside the watchdog's window.
from replicate_async import (
    AsyncReplicate,
    FileOutput,
    InputValidationError,
    ModelFunction,
    SchemaCache,
)
from replicate_async._checks.schema import (
    coerce_cli_value,
    flatten,
    input_order,
    input_properties,
    input_schema,
    inspect_input,
    output_schema,
    required_inputs,
    schema_problem,
    shape_output,
)
from replicate_async._workflows.codegen import MAX_INPUTS, generate_module
from replicate_async._workflows.use import ModelSchema, RunOptions
from replicate_async.exceptions import InputProblem, SchemaError
from replicate_async.testing import FakeReplicate, ManualClock
from replicate_async.testing._validation import validate as fake_validate

#: The longest a callback may hold the loop (CPU time of the loop's thread between two
#: ticks of the watchdog, so a busy shared machine does not make it flaky).
BLOCK_LIMIT = 0.1
NAMES = [f"d{i}" for i in range(6)]
REFS = [f"#/components/schemas/{n}" for n in [*NAMES, "Input", "Output", "missing"]]
PATTERNS = [
    "^(a+)+$",
    "(a|aa)+$",
    "(x+x+)+y",
    "^(([a-z])+.)+[A-Z]([a-z])+$",
    "a{99999999999}",
    "((a{1000}){1000}){1000}",
    "(" * 3000,
    "[",
    "^[a-z]{1,64}$",
    "(?P<x>a)(?P=x)+",
]

# -- strategies -----------------------------------------------------------------------------

#: Integers of 400 and 5,000 digits (past str()'s 4,300-digit limit), built lazily.
big = st.sampled_from([400, 5000]).map(lambda digits: 10**digits)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    big,
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def keyword(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A keyword's value: usually sensible, often of the wrong type."""
    return st.one_of(good, good, junk)


numbers = st.one_of(
    st.integers(-5, 5),
    st.sampled_from([0.1, 0.3, 1e-300, 2.5]),
    big,
)


@st.composite
def enums(draw: st.DrawFn) -> list[Any]:
    size = draw(st.sampled_from([0, 1, 3, 40]))
    return [f"choice-{i}" for i in range(size)] + draw(st.lists(junk, max_size=2))


leaf = st.fixed_dictionaries(
    {},
    optional={
        "type": keyword(
            st.sampled_from(["string", "integer", "number", "boolean", "array", "object", "null"])
        ),
        "enum": keyword(enums()),
        "minimum": keyword(numbers),
        "maximum": keyword(numbers),
        "exclusiveMinimum": keyword(numbers),
        "multipleOf": keyword(numbers),
        "minLength": keyword(st.integers(0, 10)),
        "maxLength": keyword(st.integers(0, 10)),
        "minItems": keyword(st.integers(0, 3)),
        "maxItems": keyword(st.integers(0, 3)),
        "pattern": keyword(st.sampled_from(PATTERNS)),
        "format": keyword(st.just("uri")),
        "nullable": keyword(st.booleans()),
        "x-order": keyword(st.integers(0, 5)),
        "default": junk,
        "description": keyword(st.text(max_size=20)),
        "$ref": keyword(st.sampled_from(REFS)),
        "x-cog-array-type": st.just("iterator"),
        "x-cog-array-display": st.just("concatenate"),
    },
)


#: Property names: mostly the ones inputs use (so checks reach the rules), some odd.
KEYS = ["p0", "p1", "x", "a", "", "dict", "Required"]
keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS), st.text(max_size=8))


def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.fixed_dictionaries(
            {"properties": keyword(st.dictionaries(keys, children, max_size=4))},
            optional={
                "required": keyword(st.lists(st.one_of(keys, junk), max_size=3)),
                "additionalProperties": keyword(st.booleans()),
                "type": st.just("object"),
            },
        ),
        st.fixed_dictionaries({"type": st.just("array"), "items": keyword(children)}),
        st.fixed_dictionaries({"allOf": keyword(st.lists(children, max_size=3))}),
    )


nodes = st.recursive(leaf, extend, max_leaves=12)


@st.composite
def documents(draw: st.DrawFn) -> tuple[dict[str, Any], str, int]:
    """A version's OpenAPI document: random definitions referring to each other (and to
    themselves), and which built-in monster to add (with its size): built by
    :func:`_monster` in the test, as hypothesis cannot print such values."""
    schemas: dict[str, Any] = {name: draw(nodes) for name in NAMES}
    schemas["Input"] = draw(keyword(extend(nodes)))
    schemas["Output"] = draw(nodes)
    monster = draw(
        st.sampled_from(["none", "chain", "doubling", "wide", "deep", "self", "enum", "regex"])
    )
    size = draw(st.sampled_from([10, 1_000, 25_000]))
    return {"openapi": "3.0.2", "components": {"schemas": schemas}}, monster, size


#: Documents for the explicit examples (a monster is added to a copy).
_EMPTY: dict[str, Any] = {"components": {"schemas": {}}}
_REF_INPUT: dict[str, Any] = {
    "components": {
        "schemas": {"Input": {"properties": {"p1": {"items": {"$ref": "#/components/schemas/d1"}}}}}
    }
}


def _monster(document: dict[str, Any], monster: str, size: int) -> dict[str, Any]:
    """Add a long $ref chain, a doubling allOf chain, thousands of inputs, deep nesting, a
    self-referencing Output or a 20,000-choice enum to ``document``."""
    document = copy.deepcopy(document)
    schemas = document["components"]["schemas"]
    if monster == "chain":
        schemas.update({f"c{i}": {"$ref": f"#/components/schemas/c{i + 1}"} for i in range(size)})
        schemas["d0"] = {"$ref": "#/components/schemas/c0"}
    elif monster == "doubling":
        schemas.update(
            {
                f"c{i}": {"allOf": [{"$ref": f"#/components/schemas/c{i + 1}"}] * 2}
                for i in range(60)
            }
        )
        schemas["d0"] = {"$ref": "#/components/schemas/c0"}
    elif monster == "wide":
        ref = {"$ref": "#/components/schemas/d1"}
        schemas["Input"] = {"properties": {f"p{i}": ref for i in range(size)}, "required": ["p0"]}
    elif monster == "deep":
        deep: dict[str, Any] = {"$ref": "#/components/schemas/d2"}
        for _ in range(min(size, 3_000)):
            deep = {"allOf": [deep], "type": "array", "items": deep}
        schemas["d0"] = deep
    elif monster == "self":
        schemas["Output"] = {"$ref": "#/components/schemas/Output"}
        schemas["d0"] = {"items": {"$ref": "#/components/schemas/d0"}, "type": "array"}
    elif monster == "regex":
        catastrophic = {"type": "string", "pattern": "(a|aa)+$"}
        schemas["Input"] = {"properties": dict.fromkeys(KEYS, catastrophic)}
    elif monster == "enum":
        schemas["d1"] = {"type": "string", "enum": [f"choice-{i}" for i in range(20_000)]}
    return document


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        big,
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(["a" * 28 + "!", "a" * 5_000 + "!", "https://x/y.png", "choice-7", "K"]),
        st.text(max_size=10),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def inputs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    names = draw(st.lists(st.sampled_from(KEYS), max_size=4))
    value = {name: draw(json_values) for name in names}
    return value, draw(st.sampled_from(["none", "many", "deep", "long", "long"]))


def _big_input(value: dict[str, Any], extra: str) -> dict[str, Any]:
    """Add 350 items, a list nested 2,000 deep, or a long text to ``value``."""
    if extra == "many":
        value["p1"] = ["nope"] * 300 + ["a" * 5_000 + "!"] * 50
    elif extra == "deep":
        nested: Any = "https://x/deep.png"
        for _ in range(2_000):
            nested = [nested]
        value["p0"] = nested
    elif extra == "long":
        value.update(dict.fromkeys(KEYS, "a" * 100_000 + "!"))
    return value


# -- the watchdog ---------------------------------------------------------------------------


class Watchdog:
    """A task that ticks as often as the loop lets it, recording the longest stretch of the
    loop thread's CPU time between two ticks: how long some callback held the loop."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.thread_time()
        while True:
            await asyncio.sleep(0)
            now = time.thread_time()
            self.longest = max(self.longest, now - last)
            self.ticks += 1
            last = now

    async def __aenter__(self) -> Watchdog:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def _calls(document: dict[str, Any], value: dict[str, Any]) -> list[Callable[[], Any]]:
    """Every call that walks a model's schema, one loop callback each."""
    schema = ModelSchema("o/m", None, document, "o/m")
    function = ModelFunction(None, ManualClock(), "o/m", None, RunOptions())  # type: ignore[arg-type]
    props = input_properties(document)

    def check() -> None:
        error: InputValidationError | None = None
        try:
            function._check(schema, value)
        except InputValidationError as raised:
            error = raised
        if error is not None:
            assert all(isinstance(p, InputProblem) for p in error.problems)
            assert len(str(error)) < 40_000

    def flat() -> None:
        for name in list(props)[:5]:
            raw = (input_schema(document) or {}).get("properties", {}).get(name)
            with contextlib.suppress(SchemaError):
                assert isinstance(flatten(raw, document), dict)

    return [
        lambda: ModelSchema("o/m", None, document, "o/m"),  # the pre-flight walk
        check,
        lambda: inspect_input(document, value),
        lambda: fake_validate(value, input_schema(document) or {}, path="input", document=document),
        lambda: shape_output(output_schema(document), ["a", "b"], document=document),
        lambda: shape_output(output_schema(document), value.get("p0"), document=document),
        lambda: (input_order(document), required_inputs(document), schema.input_names),
        lambda: [coerce_cli_value(p, "3", document=document) for p in list(props.values())[:20]],
        flat,
        lambda: schema_problem(document),
        lambda: _imports_or_too_many(document),
    ]


def _imports_or_too_many(document: dict[str, Any]) -> None:
    if len(input_order(document)) > MAX_INPUTS:
        with pytest.raises(SchemaError, match="too complex for codegen"):
            generate_module("someone/hostile-model", document)
    else:
        _imports(generate_module("someone/hostile-model", document))


def _imports(code: str) -> None:
    module = types.ModuleType("generated")
    exec(compile(code, "generated.py", "exec"), module.__dict__)
    assert callable(module.hostile_model)
    assert module.AsyncReplicate is AsyncReplicate
    assert isinstance(module.SCHEMA, SchemaCache)


async def _exercise(document: dict[str, Any], value: dict[str, Any]) -> tuple[float, str]:
    """The longest the loop was held, and which call took the most CPU (for the message).

    The cyclic collector is paused while the watchdog measures (a test may touch the GC;
    the library never does): a full collection of hypothesis's heap, landing inside a call
    or a tick, was measured as 300 ms of "schema walking" on Python 3.13. Earlier examples'
    garbage is collected before the watch starts."""
    spent: dict[int, float] = {}
    gc.collect()
    gc.disable()
    try:
        async with Watchdog() as dog:
            for number, call in enumerate(await _calls(document, value)):
                start = time.thread_time()
                try:
                    call()
                except Exception as exc:  # a foreign exception: say which call, briefly
                    raise AssertionError(f"call {number} raised {exc!r:.500}") from exc
                spent[number] = time.thread_time() - start
                await asyncio.sleep(0)  # one call per loop callback
    finally:
        gc.enable()
    assert dog.ticks > 0
    worst = max(spent, key=spent.__getitem__)
    return dog.longest, f"call {worst} took {spent[worst] * 1000:.0f} ms"


@settings(
    max_examples=60,
    deadline=None,  # the watchdog measures what matters: how long the loop is held
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # No shrinking: these examples are huge on purpose (a failure's message says which
    # call failed and how), and shrinking them would take minutes of a shared machine.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(recipe=documents(), given_input=inputs())
# Every monster at least once, whatever the draw (explicit examples run first).
@example(recipe=(_EMPTY, "regex", 10), given_input=({}, "long"))
@example(recipe=(_EMPTY, "chain", 25_000), given_input=({"p0": "x"}, "none"))
@example(recipe=(_EMPTY, "doubling", 10), given_input=({"x": 1}, "deep"))
@example(recipe=(_EMPTY, "wide", 25_000), given_input=({}, "many"))
@example(recipe=(_EMPTY, "deep", 25_000), given_input=({}, "deep"))
@example(recipe=(_EMPTY, "self", 10), given_input=({}, "deep"))
@example(recipe=(_REF_INPUT, "enum", 10), given_input=({}, "many"))
def test_no_hostile_schema_hangs_the_loop_or_escapes_the_exception_tree(
    recipe: tuple[dict[str, Any], str, int], given_input: tuple[dict[str, Any], str]
) -> None:
    document, value = _monster(*recipe), _big_input(*given_input)
    longest, worst = asyncio.run(_exercise(document, value))
    assert longest < BLOCK_LIMIT, f"the loop was held for {longest * 1000:.0f} ms of CPU; {worst}"


#: Awkward input names, and outputs of each type the module casts to.
_TYPED: dict[str, Any] = {"openapi": "3.0.2"}
_NAMES: dict[str, Any] = {
    "Input": {
        "properties": {
            "dict": {"enum": ["a", "b"]},
            "Required": {"type": "string", "format": "uri"},
            'a"b': {"type": "array", "items": {"type": "integer"}},
            "str": {"allOf": [{"$ref": "#/components/schemas/Input"}]},
        },
        "required": ["dict"],
    }
}
_OUTPUTS: list[Any] = [
    {"type": "string"},
    {"type": "array", "items": {"type": "string", "format": "uri"}},
    {"enum": ["x", 1, None]},
    {"type": "array", "x-cog-array-type": "iterator", "x-cog-array-display": "concatenate"},
    {"$ref": "#/components/schemas/Output"},
]


@settings(
    max_examples=1,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=st.lists(documents(), min_size=12, max_size=12))
def test_generated_modules_of_hostile_schemas_pass_mypy_strict(
    batch: list[tuple[dict[str, Any], str, int]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "generated"
        out.mkdir()
        monsters = ["chain", "doubling", "deep", "self", "enum", "regex"]
        documents = [
            *(_monster(*recipe) for recipe in batch),
            *(_monster(_REF_INPUT, monster, 1_000) for monster in monsters),
            *(_TYPED | {"components": {"schemas": {**_NAMES, "Output": out}}} for out in _OUTPUTS),
        ]
        for index, document in enumerate(documents):
            if len(input_order(document)) > MAX_INPUTS:
                continue
            code = generate_module(f"o/m{index}", document)
            (out / f"hostile_{index}.py").write_text(code)
        command = [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            f"{tmp}/cache",
            str(out),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@settings(max_examples=40, deadline=None)
@given(
    names=st.lists(
        st.one_of(
            st.sampled_from(["dict", "required", "Required", "TypedDict", "str", "list", "Any"]),
            st.sampled_from(['a"b', "it's", "a'\"b", "class", "x-y", "café²", "ﬁle", "_", "0"]),
            st.text(max_size=6),
        ),
        min_size=1,
        max_size=6,
        unique=True,
    ),
    model=st.sampled_from(["typed", "model", "cast", "any", "function", "dict", "input", "str"]),
)
def test_input_names_never_break_a_generated_module(names: list[str], model: str) -> None:
    props: dict[str, Any] = {}
    for i, name in enumerate(names):
        props[name] = [
            {"type": "object"},
            {"type": "string", "format": "uri"},
            {"enum": ["a", 'b"', 1]},
            {"type": "array", "items": {"enum": [True, None]}},
        ][i % 4]
    document = {"components": {"schemas": {"Input": {"properties": props, "required": names[:1]}}}}
    code = generate_module(f"someone/{model}", document)
    module = types.ModuleType("generated")
    exec(compile(code, "generated.py", "exec"), module.__dict__)
    input_class = next(
        v for k, v in vars(module).items() if k.endswith("Input") and isinstance(v, type)
    )
    assert set(input_class.__annotations__) == set(names)


# -- through the client, over real sockets --------------------------------------------------


def _install_schema(fake: FakeReplicate, model: str, document: dict[str, Any]) -> None:
    """Give ``model``'s latest version ``document`` as its schema (what a model's author
    pushed)."""
    found = fake._ctx.store.get_model(model)
    assert found is not None
    assert found.latest_version is not None
    found.latest_version.openapi_schema = document


async def test_use_skips_checks_on_a_schema_too_complex_and_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    looped_output = {"$ref": "#/components/schemas/Output"}
    document = _monster({"components": {"schemas": {"Output": looped_output}}}, "chain", 25_000)
    document["components"]["schemas"]["Input"] = {
        "properties": {"text": {"$ref": "#/components/schemas/d0"}}
    }
    async with FakeReplicate() as fake, fake.client() as client:
        _install_schema(fake, "fake/echo", document)
        echo = client.use("fake/echo")
        with caplog.at_level(logging.WARNING, logger="replicate_async"):
            first = await echo(text="hello")
            second = await echo(text="again")
        schema = await echo.schema()
    assert schema.input_check_skipped is not None
    assert schema.input_check_skipped.startswith("input checks skipped: too complex")
    warned = [r.getMessage() for r in caplog.records if "input checks skipped" in r.getMessage()]
    assert len(warned) == 1  # once per schema, not per call
    assert first == {"text": "hello"}  # shaped by a self-referencing Output: as given
    assert second == {"text": "again"}
    assert fake.count("POST", "/v1/models/fake/echo/predictions") == 2


async def test_a_self_referencing_output_schema_never_fails_a_succeeded_run() -> None:
    document = {
        "components": {
            "schemas": {
                "Input": {"properties": {"text": {"type": "string"}}},
                "Output": {"allOf": [{"$ref": "#/components/schemas/Output"}], "type": "array"},
            }
        }
    }
    async with FakeReplicate() as fake, fake.client() as client:
        _install_schema(fake, "fake/echo", document)
        fake.script("complete", output=["a", "b"])
        assert await client.use("fake/echo")(text="x") == ["a", "b"]


async def test_use_file_output_wraps_an_output_nested_500_lists_deep() -> None:
    nested: Any = "https://example.com/deep.png"
    for _ in range(500):
        nested = [nested]
    async with FakeReplicate() as fake, fake.client() as client:
        fake.script("complete", output=nested)
        output = await client.run("fake/echo", input={"text": "x"}, use_file_output=True)
    for _ in range(500):
        assert isinstance(output, list)
        (output,) = output
    assert isinstance(output, FileOutput)
    assert output.url == "https://example.com/deep.png"


async def test_a_bad_input_against_a_huge_enum_lists_a_bounded_error() -> None:
    choices = [f"choice-{i}" for i in range(20_000)]
    document = {
        "components": {
            "schemas": {
                "Input": {
                    "properties": {
                        "text": {"type": "array", "items": {"$ref": "#/components/schemas/E"}}
                    }
                },
                "E": {"type": "string", "enum": choices},
            }
        }
    }
    async with FakeReplicate() as fake, fake.client() as client:
        _install_schema(fake, "fake/echo", document)
        fake.clear_requests()
        with pytest.raises(InputValidationError) as caught:
            await client.use("fake/echo")(text=["nope"] * 300)
        assert fake.count("POST") == 0
    error = caught.value
    assert len(error.problems) == 100
    assert error.omitted == 200
    assert str(error).startswith("300 problem(s) with the input of fake/echo:")
    assert str(error).endswith("\n- and 280 more")
    assert len(str(error)) < 20_000  # 650 MB of problem text before
