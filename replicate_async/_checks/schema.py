"""Model inputs checked against a version's OpenAPI schema, in the API's own words.

One checker, three users: :meth:`AsyncReplicate.use` functions check an input before
anything is sent, the command line types its ``-i key=value`` pairs with
:func:`coerce_cli_value`, and the fake server (``replicate_async.testing``) answers its
422s from the same problems, so the three always agree.

A schema is untrusted input (whoever pushed the model wrote it): every walk is on a
budget (``MAX_NODES`` schema nodes, ``MAX_DEPTH`` levels, ``MAX_STEPS`` checking steps and
``MAX_CHECK_SECONDS`` of CPU, ``pattern`` matching bounded in time by
:mod:`replicate_async._checks.pattern`), ``$ref``/``allOf``
cycles end where they started, and a keyword of the wrong type is ignored. A check that
would go past a budget is skipped (:func:`inspect_input` says why), never a hang or a
foreign exception; the API checks the input anyway.

The rules are the JSON-schema subset Cog emits and Replicate enforces: ``required``,
``type`` (an integral float is an integer), ``enum`` (usually behind ``allOf`` and a
``$ref`` to ``components/schemas``), ``minimum``/``maximum`` (and the exclusive forms),
``multipleOf``, string length and ``pattern``, ``format: uri`` (a scheme is required),
array ``items``/``minItems``/``maxItems``, ``additionalProperties: false`` and
``nullable: true`` (``None`` is then accepted). ``multipleOf`` divides exactly, as
decimals (``0.3`` is a multiple of ``0.1``). Unknown
inputs are accepted unless the schema says ``additionalProperties: false``, as the API
does. Each problem carries the API's ``invalid_fields`` entry: ``type``, ``field``,
``description``.
"""

from __future__ import annotations

import json
import math
import operator
import re
import time
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import attrs

from ..exceptions import InputProblem, SchemaError
from .body import is_file
from .pattern import PatternBudget
from .walk import MAX_DEPTH, Walker, is_mapping

__all__ = [
    "InputCheck",
    "InputPlan",
    "InputProblem",
    "SchemaError",
    "check_input",
    "coerce_cli_value",
    "flatten",
    "input_order",
    "input_properties",
    "input_schema",
    "inspect_input",
    "joins_output",
    "output_schema",
    "required_inputs",
    "schema_problem",
    "shape_output",
    "validate",
]

JSON = Mapping[str, Any]

#: Steps one input check may take (a value visited; eight enum choices indexed), and the
#: CPU time it may take, patterns included (looked at every 512 steps): a check never holds
#: the event loop much longer than that. A value step costs 1-5 µs, so the step cap is
#: what ends a check on an idle machine, and the clock is the backstop on a busy one.
MAX_STEPS = 50_000
MAX_CHECK_SECONDS = 0.06
#: Problems one check collects (the rest are counted), each description's length, and
#: the enum choices a problem names.
MAX_PROBLEMS = 100
MAX_DESCRIPTION = 300
ENUM_SHOWN = 10
#: Enums up to this size are scanned; larger ones are indexed once per check.
SMALL_ENUM = 32

_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+)")
_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLEANS.update(false=False, no=False, off=False, **{"0": False})
#: (keyword, problem type, description with {} for the bound, passes(measured, bound)).
_Rules = tuple[tuple[str, str, str, Callable[[Any, Any], bool]], ...]
_LIMITS: _Rules = (
    ("maximum", "number_lte", "Must be less than or equal to {}", operator.le),
    ("minimum", "number_gte", "Must be greater than or equal to {}", operator.ge),
    ("exclusiveMaximum", "number_lt", "Must be less than {}", operator.lt),
    ("exclusiveMinimum", "number_gt", "Must be greater than {}", operator.gt),
)
_STRING_SIZES: _Rules = (
    ("minLength", "string_gte", "String length must be greater than or equal to {}", operator.ge),
    ("maxLength", "string_lte", "String length must be less than or equal to {}", operator.le),
)
_ARRAY_SIZES: _Rules = (
    ("minItems", "array_min_items", "Array must have at least {} items", operator.ge),
    ("maxItems", "array_max_items", "Array must have at most {} items", operator.le),
)


def type_name(value: Any) -> str:
    """The JSON-schema type of a Python value (files count as strings: they become URLs)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict | Mapping):
        return "object"
    return "string" if is_file(value) else type(value).__name__


def _is_type(value: Any, expected: str) -> bool:
    actual = type_name(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer":
        return actual == "integer" or (
            actual == "number" and math.isfinite(value) and float(value).is_integer()
        )
    return actual == expected


def _num(value: float) -> str:
    if isinstance(value, int):
        return str(value) if abs(value) < 10**300 else "a number of over 300 digits"
    return str(int(value)) if value.is_integer() else repr(value)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def resolve(schema: JSON, document: JSON) -> JSON:
    """Follow local ``$ref``s (``#/components/schemas/x``) inside ``document``.

    Raises :class:`SchemaError` on a reference chain longer than the walking budget."""
    return Walker(document).resolve(schema)


def flatten(schema: JSON, document: JSON) -> dict[str, Any]:
    """One property's schema with its ``$ref`` and ``allOf`` parts merged in (the
    property's own keys win): where Cog's enums, types and formats end up.

    Cycles add nothing; a schema beyond the walking budget (``MAX_NODES``, ``MAX_DEPTH``)
    raises :class:`SchemaError`."""
    return dict(Walker(document).flatten(schema))


class _OverBudget(Exception):
    """The input check ran out of steps (a huge input, or a schema it keeps following)."""


class _Checker:
    def __init__(self, document: Any) -> None:
        self.walker = Walker(document)
        self.problems: list[InputProblem] = []
        self.omitted = 0
        self.steps = 0
        self.started = time.thread_time()
        self._clock_at = 512
        self.patterns = PatternBudget()
        self._enums: dict[int, tuple[frozenset[Any], list[Any]]] = {}

    def add(self, top: str, kind: str, path: str, description: str, value: Any) -> None:
        if len(self.problems) >= MAX_PROBLEMS:
            self.omitted += 1
            return
        if len(description) > MAX_DESCRIPTION:
            description = description[: MAX_DESCRIPTION - 1] + "…"
        self.problems.append(InputProblem(top, kind, description, path, value))

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_STEPS:
            raise _OverBudget(f"too much to check (more than {MAX_STEPS} steps)")
        if self.steps >= self._clock_at:  # a look at the CPU clock every 512 steps
            self._clock_at = self.steps + 512
            if time.thread_time() - self.started > MAX_CHECK_SECONDS:
                raise _OverBudget(f"too much to check (over {MAX_CHECK_SECONDS * 1000:.0f} ms)")

    def check(self, value: Any, schema: Any, path: str, name: str, top: str, depth: int) -> None:
        self.step()
        if depth > MAX_DEPTH:
            raise _OverBudget(f"nested more than {MAX_DEPTH} levels")
        if type(schema) is dict and "$ref" not in schema and "allOf" not in schema:
            prop: JSON = schema  # a plain node (most of them): nothing to follow or merge
        else:
            prop = self.walker.flatten(schema)
        if value is None and prop.get("nullable") is True:
            return
        expected = prop.get("type")
        if isinstance(expected, str) and not _is_type(value, expected):
            detail = f"Invalid type. Expected: {expected}, given: {type_name(value)}"
            self.add(top, "invalid_type", path, detail, value)
            return
        enum = prop.get("enum")
        if isinstance(enum, list) and not self.in_enum(value, enum):
            self.add(top, "enum", path, f"{name} must be one of the following: {_few(enum)}", value)
        if _is_number(value):
            self.check_number(value, prop, path, top)
        elif isinstance(value, str):
            self.check_string(value, prop, path, top)
        elif isinstance(value, list | tuple):
            self.check_array(value, prop, path, top, depth)
        elif is_mapping(value) and (
            "properties" in prop or "required" in prop or "additionalProperties" in prop
        ):
            self.check_object(value, prop, path, top, depth)

    def in_enum(self, value: Any, enum: list[Any]) -> bool:
        """Membership by a set built once per large enum (a 20,000-choice enum and a
        300-item input cost 20,300 steps, not six million comparisons)."""
        if len(enum) <= SMALL_ENUM:
            self.step(len(enum))
            return any(_same(value, option) for option in enum)
        cached = self._enums.get(id(enum))
        if cached is None:
            self.step(len(enum) // 8 + 1)  # indexing a choice is cheap: a fraction of a step
            hashable = frozenset(_enum_key(v) for v in enum if _enum_key(v) is not None)
            others = [v for v in enum if _enum_key(v) is None]
            cached = self._enums[id(enum)] = (hashable, others)
        key = _enum_key(value)
        if key is not None and key in cached[0]:
            return True
        self.step(len(cached[1]))
        return any(_same(value, option) for option in cached[1])

    def check_bounds(
        self, measured: float, rules: _Rules, schema: JSON, path: str, top: str, value: Any
    ) -> None:
        """Each bound keyword of ``rules`` in ``schema`` against ``measured`` (the value,
        or its length); a bound that is not a finite number is ignored."""
        for keyword, kind, text, ok in rules:
            bound = schema.get(keyword)
            if _is_bound(bound) and not ok(measured, bound):
                self.add(top, kind, path, text.format(_num(bound)), value)

    def check_number(self, value: float, schema: JSON, path: str, top: str) -> None:
        self.check_bounds(value, _LIMITS, schema, path, top, value)
        step = schema.get("multipleOf")
        if _is_bound(step) and step > 0 and not _is_multiple(value, step):
            self.add(top, "multiple_of", path, f"Must be a multiple of {_num(step)}", value)

    def check_string(self, value: str, schema: JSON, path: str, top: str) -> None:
        self.check_bounds(len(value), _STRING_SIZES, schema, path, top, value)
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not self.patterns.search(pattern, value):
            self.add(top, "pattern", path, f"Does not match pattern '{pattern}'", value)
        if schema.get("format") == "uri" and not _is_uri(value):
            self.add(top, "format", path, "Does not match format 'uri'", value)

    def check_array(
        self, value: list[Any] | tuple[Any, ...], schema: JSON, path: str, top: str, depth: int
    ) -> None:
        self.check_bounds(len(value), _ARRAY_SIZES, schema, path, top, value)
        items = schema.get("items")
        if is_mapping(items):
            for index, item in enumerate(value):
                self.check(item, items, _join(path, str(index)), str(index), top, depth + 1)

    def check_object(
        self, value: Mapping[Any, Any], schema: JSON, path: str, top: str, depth: int
    ) -> None:
        props = schema.get("properties")
        props = props if is_mapping(props) else {}
        required = schema.get("required")
        for key in required if isinstance(required, list | tuple) else ():
            self.step()
            if isinstance(key, str) and key not in value:
                self.add(top or key, "required", path, f"{key} is required", None)
        for key, item in value.items():
            self.step()
            name = key if isinstance(key, str) else f"<{type(key).__name__} key>"
            if schema.get("additionalProperties") is False and key not in props:
                detail = f"Additional property {name} is not allowed"
                self.add(top or name, "additional_property_not_allowed", path, detail, item)
            sub = props.get(key) if isinstance(key, str) else None
            if is_mapping(sub):
                self.check(item, sub, _join(path, name), name, top or name, depth + 1)


def _enum_key(value: Any) -> Any:
    """A hashable stand-in equal exactly when :func:`_same` says so (``None``: compare
    one by one). Numbers compare by value (``1 == 1.0``), other scalars by type too."""
    if _is_number(value):
        return ("number", value)
    if isinstance(value, bool | str) or value is None:
        return (type_name(value), value)
    return None


def _few(options: list[Any]) -> str:
    """The first choices of an enum, JSON-encoded, and how many more there are."""
    shown: list[str] = []
    for option in options[:ENUM_SHOWN]:
        try:
            shown.append(json.dumps(option)[:60])
        except (TypeError, ValueError):
            shown.append(type_name(option))
    more = len(options) - len(shown)
    return ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def _is_bound(value: Any) -> TypeGuard[float]:
    """A number a keyword can compare with: a JSON int or finite float (not ``True``)."""
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value))


def _is_multiple(value: float, step: float) -> bool:
    """Exact decimal division: ``0.3`` is a multiple of ``0.1`` (as the decimals written
    in JSON mean, not as binary floats divide)."""
    if type(value) is int and type(step) is int:
        return value % step == 0
    try:
        quotient = Fraction(_decimal(value)) / Fraction(_decimal(step))
    except (ValueError, ZeroDivisionError, OverflowError):
        return True  # not ours to decide: the API checks it
    return quotient.denominator == 1


def _decimal(number: float) -> str | int:
    # Floats by their shortest decimal repr (what the JSON text said); ints exactly.
    return number if isinstance(number, int) else repr(float(number))


def _is_uri(value: str) -> bool:
    """An absolute URI, as the API's validator (Go's url.Parse) sees it: a scheme, no
    backslash, and a well-formed authority."""
    if not _URI.match(value) or "\\" in value:
        return False
    try:
        urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return True


def _same(value: Any, option: Any) -> bool:
    if _is_number(value) and _is_number(option):
        return bool(value == option)
    try:
        return type_name(value) == type_name(option) and bool(value == option)
    except (TypeError, ValueError, RecursionError):
        return False


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@attrs.frozen
class InputCheck:
    """What checking one input found.

    ``problems`` are the first ``MAX_PROBLEMS`` problems and ``omitted`` counts the rest;
    ``skipped`` says why the check was not done (``None``: it was), e.g. ``"input checks
    skipped: schema too complex (...)"`` — the API still checks the input when it arrives.
    ``unchecked_patterns`` counts ``pattern`` checks left to the API (a pattern too
    complex to compile safely, or out of matching time)."""

    problems: list[InputProblem]
    omitted: int = 0
    skipped: str | None = None
    unchecked_patterns: int = 0


def _run_check(value: Any, schema: Any, path: str, document: Any) -> InputCheck:
    checker = _Checker(document if document is not None else schema)
    try:
        checker.check(value, schema, path, path.rpartition(".")[2], "", 0)
    except (SchemaError, _OverBudget) as exc:
        reason = exc.reason if isinstance(exc, SchemaError) else str(exc)
        return InputCheck([], skipped=f"input checks skipped: {reason}")
    return InputCheck(checker.problems, checker.omitted, None, checker.patterns.skipped)


def validate(
    value: Any, schema: JSON, *, path: str = "", document: JSON | None = None
) -> list[InputProblem]:
    """Every problem of ``value`` against ``schema`` (``$ref``s resolve in ``document``).

    ``path`` is where ``value`` sits in the request body (``"input"`` for a model input,
    ``""`` for a whole body); problems' ``field`` starts from it. At most
    ``MAX_PROBLEMS`` problems; none when the check was skipped (see :func:`inspect_input`).
    """
    return _run_check(value, schema, path, document).problems


def _component(openapi_schema: Any, name: str) -> JSON | None:
    node: Any = openapi_schema
    for key in ("components", "schemas", name):
        node = node.get(key) if is_mapping(node) else None
    return node if is_mapping(node) else None


def input_schema(openapi_schema: Any) -> JSON | None:
    """The ``components.schemas.Input`` of a version's OpenAPI schema, if it has one."""
    return _component(openapi_schema, "Input")


def output_schema(openapi_schema: Any) -> JSON | None:
    """The ``components.schemas.Output`` of a version's OpenAPI schema, if it has one."""
    return _component(openapi_schema, "Output")


def _inputs_of(schema: Any) -> JSON | None:
    if not isinstance(schema, Mapping):
        return None
    return input_schema(schema) if "components" in schema else schema


def inspect_input(schema: JSON, input: Mapping[str, Any]) -> InputCheck:
    """Check a model ``input`` and say how it went (:class:`InputCheck`): the problems,
    how many were left out, and whether the check was skipped (a schema too complex to
    walk within the budgets, or an input too large to check without blocking the loop).

    ``schema`` is as for :func:`check_input`. Never raises on a malformed schema.
    """
    inputs = _inputs_of(schema)
    if not inputs:
        return InputCheck([])
    return _run_check(input, inputs, "input", schema)


#: Scalar input values the plan decides alone (subclasses, files and containers are not).
_SCALARS = frozenset({str, int, float, bool, type(None)})
#: Inputs of more keys than this are left to the whole check (and its step budget).
PLAN_MAX_KEYS = 256
#: The largest enum a plan indexes, and how many inputs it plans (a schema with more
#: has the rest checked by the whole check): making a plan costs at most a few ms.
PLAN_MAX_ENUM = 2_000
PLAN_MAX_INPUTS = 1_000


class InputPlan:
    """A version's ``Input`` schema prepared once for the common case: an input whose
    values are plain scalars (text, numbers, booleans, ``None``), checked against each
    input's schema flattened and each enum indexed when the plan is made.

    :meth:`valid` says ``True`` only when :func:`inspect_input` would find no problem and
    not skip the check; anything else (a problem, a container, a file, a ``pattern``, an
    enum of non-scalar choices, more than ``PLAN_MAX_KEYS`` keys, an input that would cost
    the whole check more than ``MAX_STEPS`` steps) is ``False``: the caller then runs the
    whole check, which words the problems. Made with :meth:`of`, which walks the schema on
    the walker's budgets and gives ``None`` for a schema the plan cannot describe.
    """

    __slots__ = ("_closed", "_props", "_required", "_steps")

    def __init__(
        self,
        props: dict[str, _Planned | None],
        required: tuple[str, ...],
        listed: int,
        closed: bool,
    ) -> None:
        #: name -> its rules for a scalar, or ``None`` where only the whole check can tell.
        self._props = props
        self._required = required
        self._steps = 1 + listed  # the top level and each entry of its ``required``
        self._closed = closed

    @classmethod
    def of(cls, schema: Any) -> InputPlan | None:
        """The plan of a version's OpenAPI schema (or ``Input`` schema), or ``None``."""
        inputs = _inputs_of(schema)
        if not inputs:
            return None
        walker = Walker(schema)
        try:
            top = walker.flatten(inputs)
            kind = top.get("type")
            if (isinstance(kind, str) and kind != "object") or isinstance(top.get("enum"), list):
                return None  # a top level with rules of its own: the whole check decides
            found = top.get("properties")
            raw = found if is_mapping(found) else {}
            if len(raw) > PLAN_MAX_INPUTS or not all(isinstance(k, str) for k in raw):
                return None
            props = {k: _planned(walker, v) for k, v in raw.items()}
        except SchemaError:
            return None
        required = top.get("required")
        listed = tuple(required) if isinstance(required, list | tuple) else ()
        names = tuple(name for name in listed if isinstance(name, str))
        return cls(props, names, len(listed), top.get("additionalProperties") is False)

    def valid(self, input: Mapping[str, Any]) -> bool:
        """Whether ``input`` is certainly valid (``False``: run the whole check)."""
        if type(input) is not dict or len(input) > PLAN_MAX_KEYS:
            return False
        for name in self._required:
            if name not in input:
                return False
        steps = self._steps + len(input)
        props = self._props
        for key, value in input.items():
            if type(key) is not str or type(value) not in _SCALARS:
                return False
            if key not in props:
                if self._closed:
                    return False
                continue
            planned = props[key]
            if planned is None:
                return False
            steps += planned.steps
            if steps > MAX_STEPS or not planned.valid(value):
                return False
        return True


#: The Python types of plain scalars that satisfy a ``type`` keyword at once (any other
#: value is asked of :func:`_is_type`: an integral float is an integer).
_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
}
_NO_TYPES: frozenset[type] = frozenset()


@attrs.frozen
class _Planned:
    """One input's rules for a scalar, read out of its flattened schema once."""

    nullable: bool
    expected: str | None
    types: frozenset[type]
    enum: frozenset[Any] | None
    numbers: tuple[tuple[Callable[[Any, Any], bool], float], ...]
    strings: tuple[tuple[Callable[[Any, Any], bool], float], ...]
    multiple_of: float | None
    uri: bool
    steps: int

    def valid(self, value: Any) -> bool:
        """What :meth:`_Checker.check` finds of a scalar ``value`` (no problem: ``True``)."""
        if value is None and self.nullable:
            return True
        if value != value:  # NaN: equal to no enum choice, whatever a set's identity says
            return False
        expected = self.expected
        if expected is not None and type(value) not in self.types and not _is_type(value, expected):
            return False
        if self.enum is not None and _enum_key(value) not in self.enum:
            return False
        if _is_number(value):
            step = self.multiple_of
            if step is not None and not _is_multiple(value, step):
                return False
            return all(ok(value, bound) for ok, bound in self.numbers)
        if isinstance(value, str):
            if self.uri and not _is_uri(value):
                return False
            measured = len(value)
            return all(ok(measured, bound) for ok, bound in self.strings)
        return True


def _bounds(rules: _Rules, prop: JSON) -> tuple[tuple[Callable[[Any, Any], bool], float], ...]:
    return tuple((ok, b) for keyword, _, _, ok in rules if _is_bound(b := prop.get(keyword)))


def _planned(walker: Walker, raw: Any) -> _Planned | None:
    """One input's plan, with the whole check's step cost for it (``None``: a schema the
    plan does not decide, or no schema at all)."""
    if not is_mapping(raw):
        return None
    prop = walker.flatten(raw)
    if "pattern" in prop:
        return None  # matched on the pattern budget by the whole check only
    enum = prop.get("enum")
    keys: frozenset[Any] | None = None
    cost = 1
    if isinstance(enum, list):
        if len(enum) > PLAN_MAX_ENUM:
            return None  # indexed (on the step budget) by the whole check only
        found = [_enum_key(option) for option in enum]
        if any(key is None for key in found):
            return None
        keys = frozenset(found)
        cost += len(enum) if len(enum) <= SMALL_ENUM else len(enum) // 8 + 1
    expected = prop.get("type")
    kind = expected if isinstance(expected, str) else None
    step = prop.get("multipleOf")
    return _Planned(
        nullable=prop.get("nullable") is True,
        expected=kind,
        types=_TYPES.get(kind, _NO_TYPES) if kind is not None else _NO_TYPES,
        enum=keys,
        numbers=_bounds(_LIMITS, prop),
        strings=_bounds(_STRING_SIZES, prop),
        multiple_of=step if _is_bound(step) and step > 0 else None,
        uri=prop.get("format") == "uri",
        steps=cost,
    )


def check_input(schema: JSON, input: Mapping[str, Any]) -> list[InputProblem]:
    """Every problem of a model ``input`` (none: it is valid, or could not be checked).

    ``schema`` is a version's whole OpenAPI schema (its ``Input`` is used, and ``$ref``s
    resolve inside it) or an ``Input`` object schema itself. No ``Input``: no problems.
    :func:`inspect_input` also says whether the check was skipped, and why.
    """
    return inspect_input(schema, input).problems


def schema_problem(schema: Any) -> str | None:
    """Why input checks against this version schema are skipped (it is beyond the
    walking budgets), or ``None`` when it can be used. Walks every node reachable from
    the ``Input`` schema once."""
    inputs = _inputs_of(schema)
    if not inputs:
        return None
    walker = Walker(schema)
    todo: list[Any] = [inputs]
    seen = {id(inputs)}
    try:
        while todo:
            flat = walker.flatten(todo.pop())
            props = flat.get("properties")
            children = list(props.values()) if isinstance(props, Mapping) else []
            for child in [*children, flat.get("items")]:
                walker.tick()
                if isinstance(child, Mapping) and id(child) not in seen:
                    seen.add(id(child))
                    todo.append(child)
    except SchemaError as exc:
        return f"input checks skipped: {exc.reason}"
    return None


def input_order(schema: JSON) -> list[str]:
    """The input names in display order: by ``x-order``, then as listed.

    ``schema`` is a version's OpenAPI schema or its ``Input`` schema. An ``x-order``
    that is not a finite number counts as none.
    """
    props = (_inputs_of(schema) or {}).get("properties")
    if not isinstance(props, Mapping):
        return []
    ranked = []
    for i, (name, prop) in enumerate(props.items()):
        order = prop.get("x-order") if isinstance(prop, Mapping) else None
        ranked.append((order if _is_bound(order) else math.inf, i, str(name)))
    return [name for _, _, name in sorted(ranked)]


def input_properties(schema: Any) -> dict[str, JSON]:
    """Each input's schema with its ``$ref``/``allOf`` merged in, in display order (what
    ``models get`` and ``codegen`` describe). Never raises: an input whose schema is
    beyond the walking budgets is ``{}`` (no known constraint)."""
    props = (_inputs_of(schema) or {}).get("properties")
    if not isinstance(props, Mapping):
        return {}
    walker = Walker(schema)
    found: dict[str, JSON] = {}
    for name in input_order(schema):
        try:
            found[name] = walker.flatten(props[name])
        except SchemaError:
            found[name] = {}
    return found


def required_inputs(schema: Any) -> list[str]:
    """The names of the inputs that must be given (strings listed in ``required``)."""
    required = (_inputs_of(schema) or {}).get("required")
    return [n for n in required if isinstance(n, str)] if isinstance(required, list) else []


def coerce_cli_value(prop_schema: JSON | None, text: str, *, document: JSON | None = None) -> Any:
    """Type a command-line ``key=value`` value by the input's schema.

    A string where the schema says string (``-i text=1984`` stays ``"1984"``), an int
    where it says integer, a number where number, ``true``/``false``/``yes``/``no``/``1``/
    ``0`` where boolean, JSON (or one item) where array, JSON where object. ``@path`` is a
    file (a :class:`pathlib.Path`) and ``@@x`` the string ``@x``, whatever the type. Without
    a schema (an unknown input) the value is guessed: int, float, boolean, JSON, or string.
    Text that does not fit the type is returned as-is, so :func:`check_input` reports it
    in the API's words together with every other problem.
    """
    if text.startswith("@@"):
        return text[1:]
    if text.startswith("@"):
        return Path(text[1:]).expanduser()
    prop: Mapping[str, Any] = {}
    if isinstance(prop_schema, Mapping):
        try:
            prop = Walker(document or prop_schema).flatten(prop_schema)
        except SchemaError:  # too complex to type: guess, as for an unknown input
            prop = {}
    kind = prop.get("type")
    if kind is None and isinstance(prop.get("enum"), list) and prop["enum"]:
        kind = type_name(prop["enum"][0])
    if kind == "string":
        return text
    if kind in ("integer", "number", "boolean"):
        return _scalar(text, kind)
    if kind == "array":
        if text.lstrip().startswith("["):
            return _json(text)
        items = prop.get("items")
        return [
            coerce_cli_value(items if isinstance(items, Mapping) else None, text, document=document)
        ]
    if kind == "object":
        return _json(text)
    return _json(text) if text.lstrip().startswith(("[", "{")) else _scalar(text, None)


def _scalar(text: str, kind: str | None) -> Any:
    stripped = text.strip()
    # Past 4,300 digits int() refuses: such text stays text (the checker reports it).
    if kind in ("integer", "number", None) and _INT.fullmatch(stripped) and len(stripped) < 4300:
        return int(stripped)
    if kind in ("number", None) and _FLOAT.fullmatch(stripped):
        return float(stripped)
    if kind == "boolean" and stripped.lower() in _BOOLEANS:
        return _BOOLEANS[stripped.lower()]
    if kind is None and text in ("true", "false"):
        return text == "true"
    return text


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def shape_output(output_schema: JSON | None, output: Any, *, document: JSON | None = None) -> Any:
    """A final output as the model presents it: an iterator of strings the schema marks
    ``x-cog-array-display: concatenate`` (language models' tokens) joined into one text.
    Anything else, and any output whose schema cannot be used, is returned unchanged:
    shaping never fails a prediction that succeeded."""
    if not isinstance(output, list) or not joins_output(output_schema, document=document):
        return output
    return "".join(output) if all(isinstance(item, str) for item in output) else output


def joins_output(output_schema: JSON | None, *, document: JSON | None = None) -> bool:
    """Whether :func:`shape_output` joins a list of strings under this output schema
    (``x-cog-array-display: concatenate`` on an iterator); ``False`` for a schema it
    cannot use."""
    if not isinstance(output_schema, Mapping):
        return False
    try:
        schema = Walker(document or output_schema).flatten(output_schema)
    except SchemaError:
        return False
    return (
        schema.get("type") == "array"
        and schema.get("x-cog-array-type") == "iterator"
        and schema.get("x-cog-array-display") == "concatenate"
    )
