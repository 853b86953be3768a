"""The one private cattrs converter, and the JSON codec.

Everything that turns response JSON into model objects goes through :func:`structure`.
It tolerates unknown keys (they stay in ``obj.raw``), parses timestamps with 0-9
fractional digits, and turns any shape mismatch into a ``ValueError`` subclass that the
HTTP layer reports as :class:`~replicate_async.APIResponseValidationError`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from . import models

__all__ = ["StructureError", "dumps", "loads", "parse_datetime", "structure"]

T = TypeVar("T")

try:  # optional speed-up: pip install "replicate-async[speedups]"
    import orjson

    def loads(data: bytes | str) -> Any:
        """Decode JSON (duplicate keys: the last wins, as the API's own JSON parser does)."""
        return orjson.loads(data)

    def dumps(obj: Any) -> bytes:
        """Encode JSON as compact UTF-8 bytes; NaN and infinities raise ``ValueError``."""
        data = orjson.dumps(obj)
        # orjson writes NaN and infinities as null: a null in the output is the only sign.
        if b"null" in data and _has_non_finite(obj):
            raise ValueError("Out of range float values are not JSON compliant")
        return data

except ImportError:  # pragma: no cover - exercised when orjson is absent
    _decode = json.JSONDecoder().decode
    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

    def loads(data: bytes | str) -> Any:
        """Decode JSON (duplicate keys: the last wins, as the API's own JSON parser does)."""
        return _decode(data.decode() if isinstance(data, bytes) else data)

    def dumps(obj: Any) -> bytes:
        """Encode JSON as compact UTF-8 bytes."""
        return _encode(obj).encode()


def _has_non_finite(obj: Any) -> bool:
    if isinstance(obj, float):
        return not math.isfinite(obj)
    if isinstance(obj, dict):
        return any(_has_non_finite(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return any(_has_non_finite(v) for v in obj)
    return False


class StructureError(ValueError):
    """A JSON value does not have the shape the model expects."""


_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d\d):?(\d\d))?"
)


def parse_datetime(value: str) -> datetime:
    """Parse an RFC 3339 timestamp with 0 to 9 fractional digits into an aware datetime.

    Digits past the sixth (nanoseconds) are truncated: :class:`datetime` holds microseconds.
    A timestamp without an offset is taken as UTC, which is what the API means.
    """
    if 20 <= len(value) <= 30 and value[10] == "T" and value[19] in ".Z" and value[-1] == "Z":
        # The API's own shape, "YYYY-MM-DDTHH:MM:SS[.1-9 digits]Z": 13x faster in C.
        # fromisoformat truncates past 6 digits as below; anything odd falls through.
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(value)
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise StructureError(f"not an RFC 3339 timestamp: {value[:64]!r}")
    year, month, day, hour, minute, second, frac, _z, sign, off_h, off_m = match.groups()
    micro = int(frac[:6].ljust(6, "0")) if frac else 0
    try:
        tz: timezone = UTC
        if sign is not None:  # an offset of 24 hours or more is a ValueError too
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tz
        )
    except ValueError as exc:
        raise StructureError(f"not a valid timestamp: {value[:64]!r}") from exc


def _structure_datetime(value: Any, _type: Any) -> datetime:
    if isinstance(value, str):
        return parse_datetime(value)
    raise StructureError(f"expected a timestamp string, got {type(value).__name__}")


def _structure_str(value: Any, _type: Any) -> str:
    if isinstance(value, str):
        return value
    raise StructureError(f"expected a string, got {type(value).__name__}")


def _structure_int(value: Any, _type: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise StructureError(f"expected an integer, got {type(value).__name__}")


def _structure_float(value: Any, _type: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise StructureError(f"expected a number, got {type(value).__name__}")


def _structure_bool(value: Any, _type: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise StructureError(f"expected a boolean, got {type(value).__name__}")


def _structure_dict(value: Any, _type: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise StructureError(f"expected an object, got {type(value).__name__}")


def _structure_str_list(value: Any, _type: Any) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise StructureError("expected a list of strings")


def _structure_any(value: Any, _type: Any) -> Any:
    return value


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=False)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook_func(
        lambda t: t == dict[str, Any] or t == dict[str, str], _structure_dict
    )
    conv.register_structure_hook_func(lambda t: t == list[str], _structure_str_list)
    conv.register_structure_hook(Any, _structure_any)

    def is_optional(cls: Any) -> bool:
        args = get_args(cls)
        return get_origin(cls) in (Union, UnionType) and len(args) == 2 and NoneType in args

    def optional_hook(cls: Any) -> Callable[[Any, Any], Any]:
        # cattrs' own ``X | None`` hook looks the hook of X up again on every call.
        inner = next(arg for arg in get_args(cls) if arg is not NoneType)
        inner_hook = conv.get_structure_hook(inner)

        def hook(value: Any, _type: Any) -> Any:
            return None if value is None else inner_hook(value, inner)

        return hook

    conv.register_structure_hook_factory(is_optional, optional_hook)

    def model_hook(cls: type[Any]) -> Callable[[Any, Any], Any]:
        # Generated once per class; ``raw`` is filled with the object as received.
        generated = make_dict_structure_fn(cls, conv, raw=override(omit=True))

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, dict):
                raise StructureError(
                    f"expected an object for {cls.__name__}, got {type(value).__name__}"
                )
            obj = generated(value, cls)
            object.__setattr__(obj, "raw", value)
            return obj

        return hook

    def is_model(cls: Any) -> bool:
        return isinstance(cls, type) and attrs.has(cls) and cls.__module__ == models.__name__

    conv.register_structure_hook_factory(is_model, model_hook)
    return conv


_CONVERTER = _make_converter()


def structure(data: Any, cls: type[T]) -> T:
    """Build a model object from decoded JSON, or raise :class:`StructureError`."""
    try:
        return _CONVERTER.structure(data, cls)
    except StructureError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A required key is missing, or a value is of an unexpected kind.
        raise StructureError(f"unexpected shape for {cls.__name__}: {exc!r}") from exc
    except Exception as exc:  # cattrs' own errors (ClassValidationError, ...)
        raise StructureError(f"unexpected shape for {cls.__name__}: {exc!r}") from exc


def structure_list(data: Any, cls: type[T]) -> list[T]:
    """Build a list of model objects from a decoded JSON array."""
    if not isinstance(data, list):
        raise StructureError(f"expected a list of {cls.__name__}, got {type(data).__name__}")
    hook = _CONVERTER.get_structure_hook(cls)
    try:
        return [hook(item, cls) for item in data]
    except StructureError:
        raise
    except Exception as exc:
        raise StructureError(f"unexpected shape for {cls.__name__}: {exc!r}") from exc
