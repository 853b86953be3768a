"""Model inputs checked against a version's OpenAPI schema, in the API's own words.

One checker, three users: :meth:`AsyncReplicate.use` functions check an input before
anything is sent, the command line types its ``-i key=value`` pairs with
:func:`coerce_cli_value`, and the fake server (``replicate_async.testing``) answers its
422s from the same problems, so the three always agree.

The rules are the JSON-schema subset Cog emits and Replicate enforces: ``required``,
``type`` (an integral float is an integer), ``enum`` (usually behind ``allOf`` and a
``$ref`` to ``components/schemas``), ``minimum``/``maximum`` (and the exclusive forms),
``multipleOf``, string length and ``pattern``, ``format: uri`` (a scheme is required),
array ``items``/``minItems``/``maxItems``, and ``additionalProperties: false``. Unknown
inputs are accepted unless the schema says ``additionalProperties: false``, as the API
does. Each problem carries the API's ``invalid_fields`` entry: ``type``, ``field``,
``description``.
"""

from __future__ import annotations

import io
import json
import math
import operator
import os
import re
from collections.abc import AsyncIterable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from .exceptions import InputProblem

__all__ = [
    "InputProblem",
    "check_input",
    "coerce_cli_value",
    "flatten",
    "input_order",
    "input_schema",
    "output_schema",
    "shape_output",
    "validate",
]

JSON = Mapping[str, Any]

_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+)")
_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True}
_BOOLEANS.update(false=False, no=False, off=False, **{"0": False})
_LIMITS: tuple[tuple[str, str, str, Callable[[Any, Any], bool]], ...] = (
    ("maximum", "number_lte", "Must be less than or equal to", operator.le),
    ("minimum", "number_gte", "Must be greater than or equal to", operator.ge),
    ("exclusiveMaximum", "number_lt", "Must be less than", operator.lt),
    ("exclusiveMinimum", "number_gt", "Must be greater than", operator.gt),
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
    return "string" if _is_file(value) else type(value).__name__


def _is_file(value: Any) -> bool:
    """Paths, bytes and file objects: the client turns them into URL strings."""
    kinds = (bytes, bytearray, memoryview, os.PathLike, io.IOBase, AsyncIterable)
    return isinstance(value, kinds) or hasattr(value, "read")


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
    return str(int(value)) if float(value).is_integer() else repr(value)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def resolve(schema: JSON, document: JSON) -> JSON:
    """Follow local ``$ref``s (``#/components/schemas/x``) inside ``document``."""
    for _ in range(32):
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        node: Any = document
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        schema = node if isinstance(node, Mapping) else {}
    return schema


def flatten(schema: JSON, document: JSON) -> dict[str, Any]:
    """One property's schema with its ``$ref`` and ``allOf`` parts merged in (the
    property's own keys win): where Cog's enums, types and formats end up."""
    schema = resolve(schema, document)
    merged: dict[str, Any] = {}
    for sub in schema.get("allOf", ()):
        if isinstance(sub, Mapping):
            merged.update(flatten(sub, document))
    merged.update((k, v) for k, v in schema.items() if k != "allOf")
    return merged


class _Checker:
    def __init__(self, document: JSON) -> None:
        self.document = document
        self.problems: list[InputProblem] = []

    def add(self, top: str, kind: str, path: str, description: str, value: Any) -> None:
        self.problems.append(InputProblem(top, kind, description, path, value))

    def check(self, value: Any, schema: JSON, path: str, name: str, top: str) -> None:
        schema = resolve(schema, self.document)
        for sub in schema.get("allOf", ()):
            if isinstance(sub, Mapping):
                self.check(value, sub, path, name, top)
        expected = schema.get("type")
        if isinstance(expected, str) and not _is_type(value, expected):
            detail = f"Invalid type. Expected: {expected}, given: {type_name(value)}"
            self.add(top, "invalid_type", path, detail, value)
            return
        enum = schema.get("enum")
        if isinstance(enum, list) and not any(_same(value, option) for option in enum):
            allowed = ", ".join(json.dumps(v) for v in enum)
            self.add(top, "enum", path, f"{name} must be one of the following: {allowed}", value)
        if _is_number(value):
            self.check_number(value, schema, path, top)
        elif isinstance(value, str):
            self.check_string(value, schema, path, top)
        elif isinstance(value, list | tuple):
            self.check_array(value, schema, path, top)
        elif isinstance(value, Mapping) and (
            "properties" in schema or "required" in schema or "additionalProperties" in schema
        ):
            self.check_object(value, schema, path, top)

    def check_number(self, value: float, schema: JSON, path: str, top: str) -> None:
        for keyword, kind, text, ok in _LIMITS:
            bound = schema.get(keyword)
            if _is_number(bound) and not ok(value, bound):
                self.add(top, kind, path, f"{text} {_num(bound)}", value)
        step = schema.get("multipleOf")
        if _is_number(step) and step > 0 and not float(value / step).is_integer():
            self.add(top, "multiple_of", path, f"Must be a multiple of {_num(step)}", value)

    def check_string(self, value: str, schema: JSON, path: str, top: str) -> None:
        low, high = schema.get("minLength"), schema.get("maxLength")
        if _is_number(low) and len(value) < low:
            detail = f"String length must be greater than or equal to {low}"
            self.add(top, "string_gte", path, detail, value)
        if _is_number(high) and len(value) > high:
            detail = f"String length must be less than or equal to {high}"
            self.add(top, "string_lte", path, detail, value)
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _search(pattern, value):
            self.add(top, "pattern", path, f"Does not match pattern '{pattern}'", value)
        if schema.get("format") == "uri" and not _is_uri(value):
            self.add(top, "format", path, "Does not match format 'uri'", value)

    def check_array(
        self, value: list[Any] | tuple[Any, ...], schema: JSON, path: str, top: str
    ) -> None:
        low, high = schema.get("minItems"), schema.get("maxItems")
        if _is_number(low) and len(value) < low:
            self.add(top, "array_min_items", path, f"Array must have at least {low} items", value)
        if _is_number(high) and len(value) > high:
            self.add(top, "array_max_items", path, f"Array must have at most {high} items", value)
        items = schema.get("items")
        if isinstance(items, Mapping):
            for index, item in enumerate(value):
                self.check(item, items, _join(path, str(index)), str(index), top)

    def check_object(self, value: Mapping[str, Any], schema: JSON, path: str, top: str) -> None:
        props: JSON = schema.get("properties") or {}
        for key in schema.get("required", ()):
            if key not in value:
                self.add(top or key, "required", path, f"{key} is required", None)
        if schema.get("additionalProperties") is False:
            for key in value:
                if key not in props:
                    detail = f"Additional property {key} is not allowed"
                    self.add(
                        top or key, "additional_property_not_allowed", path, detail, value[key]
                    )
        for key, item in value.items():
            sub = props.get(key)
            if isinstance(sub, Mapping):
                self.check(item, sub, _join(path, key), key, top or key)


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
    return type_name(value) == type_name(option) and bool(value == option)


def _search(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:  # a pattern Python cannot compile is not ours to enforce
        return True


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate(
    value: Any, schema: JSON, *, path: str = "", document: JSON | None = None
) -> list[InputProblem]:
    """Every problem of ``value`` against ``schema`` (``$ref``s resolve in ``document``).

    ``path`` is where ``value`` sits in the request body (``"input"`` for a model input,
    ``""`` for a whole body); problems' ``field`` starts from it.
    """
    checker = _Checker(document if document is not None else schema)
    checker.check(value, schema, path, path.rpartition(".")[2], "")
    return checker.problems


def _component(openapi_schema: Any, name: str) -> JSON | None:
    node: Any = openapi_schema
    for key in ("components", "schemas", name):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else None


def input_schema(openapi_schema: Any) -> JSON | None:
    """The ``components.schemas.Input`` of a version's OpenAPI schema, if it has one."""
    return _component(openapi_schema, "Input")


def output_schema(openapi_schema: Any) -> JSON | None:
    """The ``components.schemas.Output`` of a version's OpenAPI schema, if it has one."""
    return _component(openapi_schema, "Output")


def check_input(schema: JSON, input: Mapping[str, Any]) -> list[InputProblem]:
    """Every problem of a model ``input`` (none: it is valid).

    ``schema`` is a version's whole OpenAPI schema (its ``Input`` is used, and ``$ref``s
    resolve inside it) or an ``Input`` object schema itself. No ``Input``: no problems.
    """
    inputs = input_schema(schema) if "components" in schema else schema
    if not inputs:
        return []
    return validate(input, inputs, path="input", document=schema)


def input_order(schema: JSON) -> list[str]:
    """The input names in display order: by ``x-order``, then as listed.

    ``schema`` is a version's OpenAPI schema or its ``Input`` schema.
    """
    inputs = input_schema(schema) if "components" in schema else schema
    props = (inputs or {}).get("properties") or {}
    ranked = [
        (prop.get("x-order", math.inf) if isinstance(prop, Mapping) else math.inf, i, name)
        for i, (name, prop) in enumerate(props.items())
    ]
    return [name for _, _, name in sorted(ranked)]


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
    prop = flatten(prop_schema, document or prop_schema) if prop_schema is not None else {}
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
    if kind in ("integer", "number", None) and _INT.fullmatch(stripped):
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
    Anything else is returned unchanged."""
    if output_schema is None or not isinstance(output, list):
        return output
    schema = flatten(output_schema, document or output_schema)
    if (
        schema.get("type") == "array"
        and schema.get("x-cog-array-type") == "iterator"
        and schema.get("x-cog-array-display") == "concatenate"
        and all(isinstance(item, str) for item in output)
    ):
        return "".join(output)
    return output
