"""The one private cattrs converter, and the JSON codec.

Everything that turns response JSON into model objects goes through :func:`structure`.
It tolerates unknown keys (they stay in ``obj.raw``), parses timestamps with 0-9
fractional digits, and turns any shape mismatch into a ``ValueError`` subclass that the
HTTP layer reports as :class:`~replicate_async.APIResponseValidationError`.

Model classes are built by code generated once per class (:func:`_builder`), each field
checked inline and set in its slot: as cheap as dicts (``benchmarks/``, scenario g).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from types import NoneType, UnionType
from typing import Any, Final, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from . import models

__all__ = ["StructureError", "dumps", "loads", "parse_datetime", "structure"]

T = TypeVar("T")

#: The deepest nesting ``loads`` accepts (orjson's own limit).
MAX_DEPTH: Final = 1024
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _too_deep(text: str) -> bool:
    """Whether arrays and objects nest beyond :data:`MAX_DEPTH` (strings skipped)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # the common case, decided by two C-level counts
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        char = token.group()
        if char in ("[", "{"):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in ("]", "}"):
            depth -= 1
    return False


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

    def _no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")  # as orjson: no NaN or Infinity

    def _finite(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            raise ValueError(f"number out of range: {text[:40]}")  # as orjson: no 1e400
        return value

    _decode = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite).decode
    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode

    def loads(data: bytes | str) -> Any:
        """Decode JSON (duplicate keys: the last wins, as the API's own JSON parser does);
        nesting deeper than orjson's 1,024 is refused, as orjson does (Python 3.13's
        decoder would build it, and it would then travel in errors and reprs)."""
        text = data.decode() if isinstance(data, bytes) else data
        if _too_deep(text):
            raise ValueError(f"JSON nested more than {MAX_DEPTH} deep")
        return _decode(text)

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
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
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


def _hook(check: Callable[[Any, str], Any]) -> Callable[[Any, Any], Any]:
    return lambda value, _type: check(value, "value")


def _equals(tp: Any) -> Callable[[Any], bool]:
    return lambda other: bool(other == tp)


def _make_converter() -> cattrs.Converter:
    """The cattrs converter: model classes through their generated builders, and the same
    checks as theirs for any other type asked for (``structure(data, list[str])``...)."""
    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=False)
    checks: dict[Any, Callable[[Any, str], Any]] = {
        datetime: _as_datetime,
        str: _of_kind(str, "a string"),
        int: _as_int,
        float: _as_float,
        bool: _of_kind(bool, "a boolean"),
        dict[str, Any]: _of_kind(dict, "an object"),
        dict[str, str]: _of_kind(dict, "an object"),
        list[str]: _as_str_list,
    }
    for tp, check in checks.items():
        if isinstance(tp, type):
            conv.register_structure_hook(tp, _hook(check))
        else:  # dict[str, Any] and the like: matched by equality
            conv.register_structure_hook_func(_equals(tp), _hook(check))
    conv.register_structure_hook(Any, lambda value, _t: value)

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
        if _generated(cls):
            build = _builder(cls, conv)
            return lambda value, _type: build(value)
        # A model class with validators or the like: cattrs' own code, ``raw`` set after.
        generated = make_dict_structure_fn(cls, conv, raw=override(omit=True))

        def hook(value: Any, _type: Any) -> Any:
            if not isinstance(value, dict):
                raise _bad(f"{cls.__name__}", "an object", value)
            obj = generated(value, cls)
            object.__setattr__(obj, "raw", value)
            return obj

        return hook

    def is_model(cls: Any) -> bool:
        return isinstance(cls, type) and attrs.has(cls) and cls.__module__ == models.__name__

    conv.register_structure_hook_factory(is_model, model_hook)
    return conv


# -- generated builders ---------------------------------------------------------------------

_MISSING: Final = object()
#: Model class -> its generated builder (decoded JSON -> object), made on first use.
_BUILDERS: dict[type[Any], Callable[[Any], Any]] = {}


def _bad(where: str, what: str, value: Any) -> StructureError:
    return StructureError(f"{where}: expected {what}, got {type(value).__name__}")


def _of_kind(kind: type[Any], what: str) -> Callable[[Any, str], Any]:
    def check(value: Any, where: str) -> Any:
        if isinstance(value, kind):
            return value
        raise _bad(where, what, value)

    return check


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _bad(where, "an integer", value)


def _as_float(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _bad(where, "a number", value)


def _as_datetime(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        return parse_datetime(value)
    raise _bad(where, "a timestamp string", value)


def _as_str_list(value: Any, where: str) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise _bad(where, "a list of strings", value)


def _as_list(value: Any, build: Callable[[Any], Any], where: str) -> list[Any]:
    if isinstance(value, list):
        return [build(item) for item in value]
    raise _bad(where, "a list", value)


def _check(tp: Any, where: str, ns: dict[str, Any], conv: cattrs.Converter) -> list[str]:
    """Source lines that turn ``v`` (not ``None``) into a value of ``tp``, or raise."""
    w = repr(where)
    if tp is str:
        return [
            f"if v.__class__ is not str and not isinstance(v, str): raise _bad({w}, 'a string', v)"
        ]
    if tp is int:
        return [f"if v.__class__ is not int: v = _as_int(v, {w})"]
    if tp is float:
        return [f"if v.__class__ is not float: v = _as_float(v, {w})"]
    if tp is bool:
        return [f"if v is not True and v is not False: raise _bad({w}, 'a boolean', v)"]
    if tp is datetime:
        return [f"v = parse_datetime(v) if v.__class__ is str else _as_datetime(v, {w})"]
    if tp is Any:
        return []
    if tp in (dict[str, Any], dict[str, str]):
        return [f"if not isinstance(v, dict): raise _bad({w}, 'an object', v)"]
    if tp == list[str]:
        return [f"v = _as_str_list(v, {w})"]
    name = f"h{len(ns)}"
    if get_origin(tp) is list and _generated(get_args(tp)[0]):
        ns[name] = _builder(get_args(tp)[0], conv)
        return [f"v = _as_list(v, {name}, {w})"]
    if _generated(tp):
        ns[name] = _builder(tp, conv)
        return [
            f"if v.__class__ is not dict and not isinstance(v, dict): "
            f"raise _bad({w}, 'an object', v)",
            f"v = {name}(v)",
        ]
    ns[name], ns[name + "t"] = conv.get_structure_hook(tp), tp
    return [f"v = {name}(v, {name}t)"]


def _generated(cls: Any) -> bool:
    """A model class simple enough for a generated builder (no generics, hooks or aliases)."""
    if not (isinstance(cls, type) and attrs.has(cls) and cls.__module__ == models.__name__):
        return False
    if getattr(cls, "__parameters__", ()) or hasattr(cls, "__attrs_post_init__"):
        return False
    return all(
        f.init and f.validator is None and f.converter is None and f.alias == f.name
        for f in attrs.fields(cls)
    )


def _field_source(cls: type[Any], field: Any, i: int, ns: dict[str, Any], conv: Any) -> str:
    where = f"{cls.__name__}.{field.name}"
    tp = field.type
    args = get_args(tp)
    optional = get_origin(tp) in (Union, UnionType) and len(args) == 2 and NoneType in args
    inner = next(arg for arg in args if arg is not NoneType) if optional else tp
    check = _check(inner, where, ns, conv)
    if check and (optional or field.default is None):
        check = ["if v is not None:", *(" " * 4 + line for line in check)]
    key = repr(field.name)
    if field.default is None:
        lines = [f"v = g({key})"]
    elif field.default is attrs.NOTHING:
        lines = [f"v = g({key}, _MISSING)", f"if v is _MISSING: raise _missing({where!r})"]
    else:
        default = field.default
        factory = getattr(default, "factory", None)  # an attrs.Factory, or a constant
        ns[f"d{i}"] = factory if factory is not None else lambda: default
        lines = [f"v = g({key}, _MISSING)", f"if v is _MISSING: v = d{i}()", "else:"]
        check = [" " * 4 + line for line in check] or ["    pass"]
    return "\n".join(" " * 4 + line for line in [*lines, *check, f"s{i}(obj, v)"] if line)


def _builder(cls: type[Any], conv: cattrs.Converter) -> Callable[[Any], Any]:
    """The generated builder of a model class: a dict in, the object (``raw`` = the dict) out.

    Straight-line code; an object is made without ``__init__`` and each slot is set through
    its descriptor (the classes are frozen, validator-free attrs classes: nothing is skipped).
    """
    found = _BUILDERS.get(cls)
    if found is not None:
        return found
    attrs.resolve_types(cls)
    ns: dict[str, Any] = {
        "cls": cls,
        "new": object.__new__,
        "_MISSING": _MISSING,
        "_bad": _bad,
        "_missing": lambda where: StructureError(f"{where}: missing"),
        "_as_int": _as_int,
        "_as_float": _as_float,
        "_as_datetime": _as_datetime,
        "parse_datetime": parse_datetime,
        "_as_str_list": _as_str_list,
        "_as_list": _as_list,
        "StructureError": StructureError,
    }
    body = []
    for i, field in enumerate(attrs.fields(cls)):
        ns[f"s{i}"] = cls.__dict__[field.name].__set__
        if field.name == "raw":
            body.append(f"    s{i}(obj, o)")
        else:
            body.append(_field_source(cls, field, i, ns, conv))
    name = cls.__name__
    # Built inside ``make`` so that every helper is a closure variable, not a global lookup.
    names = ", ".join(ns)
    source = "\n".join(
        [
            f"def make({names}):",
            "  def build(o):",
            "    if o.__class__ is not dict and not isinstance(o, dict):",
            f"        raise StructureError('expected an object for {name}, got '"
            " + type(o).__name__)",
            "    g = o.get",
            "    obj = new(cls)",
            *body,
            "    return obj",
            "  return build",
        ]
    )
    scope: dict[str, Any] = {}
    exec(compile(source, f"<replicate_async build {name}>", "exec"), scope)
    built: Callable[[Any], Any] = scope["make"](**ns)
    _BUILDERS[cls] = built
    return built


_CONVERTER = _make_converter()


def structure(data: Any, cls: type[T]) -> T:
    """Build a model object from decoded JSON, or raise :class:`StructureError`."""
    try:
        build = _BUILDERS.get(cls)
        if build is not None:
            built: T = build(data)
            return built
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
    build = _BUILDERS.get(cls)
    if build is None:
        hook = _CONVERTER.get_structure_hook(cls)
        build = _BUILDERS.get(cls) or (lambda item: hook(item, cls))
    try:
        return [build(item) for item in data]
    except StructureError:
        raise
    except Exception as exc:
        raise StructureError(f"unexpected shape for {cls.__name__}: {exc!r}") from exc
