"""Model objects back to plain data: ``obj.to_dict()`` and ``obj.to_json()``.

The reverse of :func:`~replicate_async._converter.structure`, through the same converter.
Models (layer 0) cannot import this layer, so importing this module installs the two
functions their methods call.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs

from . import models
from ._converter import _CONVERTER

__all__ = ["to_dict", "to_json"]

_DEFAULTLESS = attrs.NOTHING


def to_dict(obj: Any, mode: models.DumpMode, exclude_unset: bool) -> dict[str, Any]:
    """One model object as a dict (see :meth:`models._Dumpable.to_dict`)."""
    if mode not in ("api", "python"):
        raise ValueError(f"mode must be 'api' or 'python', got {mode!r}")
    raw = getattr(obj, "raw", None)
    received = raw if isinstance(raw, dict) and raw else None
    out: dict[str, Any] = {}
    for field in attrs.fields(type(obj)):
        if field.name == "raw":
            continue
        value = getattr(obj, field.name)
        if exclude_unset and not _was_set(field, value, received):
            continue
        out[field.name] = _value(value, mode, exclude_unset)
    if mode == "api" and received is not None:
        # Fields this SDK does not model yet travel along, as the API sent them.
        out.update((key, item) for key, item in received.items() if key not in out)
    return out


def _was_set(field: Any, value: Any, received: dict[str, Any] | None) -> bool:
    if received is not None:
        return field.name in received
    default = field.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        default = default.factory()
    return default is _DEFAULTLESS or value != default


def _value(value: Any, mode: models.DumpMode, exclude_unset: bool) -> Any:
    if attrs.has(type(value)) and hasattr(value, "to_dict"):
        return to_dict(value, mode, exclude_unset)
    if isinstance(value, list):
        return [_value(item, mode, exclude_unset) for item in value]
    if isinstance(value, datetime):
        return _timestamp(value) if mode == "api" else value
    return _CONVERTER.unstructure(value)


def _timestamp(value: datetime) -> str:
    """RFC 3339, with ``Z`` for UTC as the API writes it."""
    if value.tzinfo is not None and value.utcoffset() == UTC.utcoffset(None):
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value.isoformat()


def to_json(data: dict[str, Any], indent: int | None) -> str:
    """A ``to_dict(mode="api")`` result as JSON text (non-ASCII kept as is)."""
    return json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False)


models._CODEC.to_dict = to_dict
models._CODEC.to_json = to_json
