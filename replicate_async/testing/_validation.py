"""Replicate's 422 ``invalid_fields`` for request bodies and model inputs.

The rules are the SDK's own input checker (:mod:`replicate_async._checks.schema`): what Cog input
schemas and the API's request bodies use: ``required``, ``type``, ``enum``,
``minimum``/``maximum`` (and exclusive forms), string length, ``format: uri``, ``items``,
``additionalProperties: false``, ``allOf`` and local ``$ref``s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .._checks.schema import input_schema as _sdk_input_schema
from .._checks.schema import validate as check_value
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


def validate(
    value: Any, schema: JSON, *, path: str = "", document: JSON | None = None
) -> list[FieldError]:
    """Validate ``value`` against ``schema`` (``$ref``s resolve inside ``document``).

    The SDK's own checker (``replicate_async._checks.schema``) decides, so the client's
    ``InputValidationError`` and the fake's 422s always agree (a schema too complex to
    check is not checked, by either).
    """
    problems = check_value(value, schema, path=path, document=document)
    return [FieldError(p.type, p.field, p.description) for p in problems]


def input_schema(openapi_schema: JSON | None) -> JSON | None:
    """The ``components.schemas.Input`` of a version's OpenAPI schema, if any."""
    schema = _sdk_input_schema(openapi_schema)  # any shape of document: never raises
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
