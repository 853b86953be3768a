"""A small JSON-schema subset validator producing Replicate's 422 ``invalid_fields``.

Covers what Cog input schemas and the API's request bodies use: ``required``, ``type``,
``enum``, ``minimum``/``maximum`` (and exclusive forms), string length, ``items``,
``additionalProperties: false``, ``allOf`` and local ``$ref``s.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ._util import problem

__all__ = [
    "PREDICTION_BODY",
    "TRAINING_BODY",
    "VERSION_PREDICTION_BODY",
    "FieldError",
    "invalid_fields_response",
    "validate",
]

JSON = dict[str, Any]

_EVENTS = {
    "type": "array",
    "items": {"type": "string", "enum": ["start", "output", "logs", "completed"]},
}

PREDICTION_BODY: JSON = {
    "type": "object",
    "required": ["input"],
    "additionalProperties": False,
    "properties": {
        "input": {"type": "object"},
        "stream": {"type": "boolean"},
        "webhook": {"type": "string"},
        "webhook_events_filter": _EVENTS,
    },
}
VERSION_PREDICTION_BODY: JSON = {
    **PREDICTION_BODY,
    "required": ["version", "input"],
    "properties": {"version": {"type": "string"}, **PREDICTION_BODY["properties"]},
}
TRAINING_BODY: JSON = {
    "type": "object",
    "required": ["destination", "input"],
    "properties": {
        "destination": {"type": "string"},
        "input": {"type": "object"},
        "webhook": {"type": "string"},
        "webhook_events_filter": _EVENTS,
    },
}


@dataclass(frozen=True, slots=True)
class FieldError:
    """One entry of a 422 body's ``invalid_fields``."""

    type: str
    field: str
    description: str

    def to_json(self) -> JSON:
        """The ``invalid_fields`` item."""
        return {"type": self.type, "field": self.field, "description": self.description}


def _type_name(value: Any) -> str:
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
    if isinstance(value, list):
        return "array"
    return "object"


def _is_type(value: Any, expected: str) -> bool:
    actual = _type_name(value)
    if expected == "number":
        return actual in ("integer", "number")
    if expected == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == expected


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Validator:
    def __init__(self, document: JSON) -> None:
        self.document = document
        self.errors: list[FieldError] = []

    def resolve(self, schema: JSON) -> JSON:
        seen = 0
        while "$ref" in schema and seen < 32:
            ref = schema["$ref"]
            node: Any = self.document
            if isinstance(ref, str) and ref.startswith("#/"):
                for part in ref[2:].split("/"):
                    node = node.get(part, {}) if isinstance(node, dict) else {}
            schema = node if isinstance(node, dict) else {}
            seen += 1
        return schema

    def check(self, value: Any, schema: JSON, path: str, name: str) -> None:
        schema = self.resolve(schema)
        for sub in schema.get("allOf", ()):
            self.check(value, sub, path, name)
        expected = schema.get("type")
        if isinstance(expected, str) and not _is_type(value, expected):
            detail = f"Invalid type. Expected: {expected}, given: {_type_name(value)}"
            self.errors.append(FieldError("invalid_type", path, detail))
            return
        if "enum" in schema and value not in schema["enum"]:
            allowed = ", ".join(json.dumps(v) for v in schema["enum"])
            detail = f"{name} must be one of the following: {allowed}"
            self.errors.append(FieldError("enum", path, detail))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self._check_number(value, schema, path)
        elif isinstance(value, str):
            if "minLength" in schema and len(value) < schema["minLength"]:
                detail = f"String length must be greater than or equal to {schema['minLength']}"
                self.errors.append(FieldError("string_gte", path, detail))
            if "maxLength" in schema and len(value) > schema["maxLength"]:
                detail = f"String length must be less than or equal to {schema['maxLength']}"
                self.errors.append(FieldError("string_lte", path, detail))
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                self.check(item, schema["items"], _join(path, str(index)), str(index))
        elif isinstance(value, dict) and (
            "properties" in schema or "required" in schema or "additionalProperties" in schema
        ):
            self.check_object(value, schema, path)

    def _check_number(self, value: float, schema: JSON, path: str) -> None:
        limits = (
            ("maximum", "number_lte", "Must be less than or equal to", operator.le),
            ("minimum", "number_gte", "Must be greater than or equal to", operator.ge),
            ("exclusiveMaximum", "number_lt", "Must be less than", operator.lt),
            ("exclusiveMinimum", "number_gt", "Must be greater than", operator.gt),
        )
        for keyword, kind, text, ok in limits:
            bound = schema.get(keyword)
            if (
                isinstance(bound, (int, float))
                and not isinstance(bound, bool)
                and not ok(value, bound)
            ):
                self.errors.append(FieldError(kind, path, f"{text} {_num(bound)}"))

    def check_object(self, value: JSON, schema: JSON, path: str) -> None:
        props: JSON = schema.get("properties", {})
        for req in schema.get("required", ()):
            if req not in value:
                self.errors.append(FieldError("required", path, f"{req} is required"))
        if schema.get("additionalProperties") is False:
            for key in value:
                if key not in props:
                    detail = f"Additional property {key} is not allowed"
                    self.errors.append(FieldError("additional_property_not_allowed", path, detail))
        for key, item in value.items():
            sub = props.get(key)
            if isinstance(sub, dict):
                self.check(item, sub, _join(path, key), key)


def validate(
    value: Any, schema: JSON, *, path: str = "", document: JSON | None = None
) -> list[FieldError]:
    """Validate ``value`` against ``schema`` (``$ref``s resolve inside ``document``)."""
    validator = _Validator(document if document is not None else schema)
    validator.check(value, schema, path, path.rpartition(".")[2])
    return validator.errors


def input_schema(openapi_schema: JSON | None) -> JSON | None:
    """The ``components.schemas.Input`` of a version's OpenAPI schema, if any."""
    if not isinstance(openapi_schema, dict):
        return None
    schema = openapi_schema.get("components", {}).get("schemas", {}).get("Input")
    return schema if isinstance(schema, dict) else None


def invalid_fields_response(errors: list[FieldError]) -> web.Response:
    """The 422 ``Input validation failed`` problem response."""
    lines = "".join(
        f"- {e.field}: {e.description}\n" if e.field else f"- {e.description}\n" for e in errors
    )
    return problem(
        422,
        lines,
        title="Input validation failed",
        invalid_fields=[e.to_json() for e in errors],
    )
