"""Parameter types and shared options: ``-i key=value`` inputs, model refs, ``--json``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._runtime import Settings

__all__ = [
    "MODEL_REF",
    "RUN_REF",
    "input_option",
    "json_option",
    "list_options",
    "parse_inputs",
    "parse_value",
]

F = TypeVar("F", bound=Callable[..., Any])

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(\.[0-9]*)?[eE][+-]?[0-9]+)")


if TYPE_CHECKING:
    _StrType = click.ParamType[str]
else:  # click < 8.2 is not generic at runtime
    _StrType = click.ParamType


class _Pattern(_StrType):
    """A string that must match a pattern (checked before anything is sent)."""

    def __init__(self, name: str, pattern: str, example: str) -> None:
        self.name = name
        self._pattern = re.compile(pattern)
        self._example = example

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """Return ``value`` if it matches, else fail with an example of the form."""
        if isinstance(value, str) and self._pattern.fullmatch(value):
            return value
        return self.fail(f"{value!r} is not of the form {self._example}", param, ctx)


#: ``owner/name``.
MODEL_REF = _Pattern("OWNER/NAME", rf"{_NAME}/{_NAME}", "owner/name")
#: ``owner/name``, ``owner/name:version`` or a 64-hex version id.
RUN_REF = _Pattern(
    "OWNER/NAME[:VERSION]",
    rf"{_NAME}/{_NAME}(:{_NAME})?|[0-9a-f]{{64}}",
    "owner/name, owner/name:version or a version id",
)


def parse_value(text: str) -> Any:
    """Type a ``-i`` value: ``@path`` is a file, then ints, floats, ``true``/``false``,
    JSON for ``[...]``/``{...}``; anything else is a string (``@@x`` is the string ``@x``).
    """
    if text.startswith("@@"):
        return text[1:]
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        if not path.is_file():
            raise click.BadParameter(f"no such file: {text[1:]!r}")
        return path
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text in ("true", "false"):
        return text == "true"
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"{text[:40]!r} is not valid JSON: {exc}") from None
    return text


def parse_inputs(pairs: Sequence[str]) -> dict[str, Any]:
    """``["prompt=a cat", "steps=20"]`` → ``{"prompt": "a cat", "steps": 20}``."""
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="'-i'")
        try:
            result[key.strip()] = parse_value(value)
        except click.BadParameter as exc:
            exc.param_hint = f"'-i {key}'"
            raise
    return result


def _inputs_callback(_ctx: click.Context, _param: click.Parameter, value: Any) -> dict[str, Any]:
    return parse_inputs(value or ())


def input_option(fn: F) -> F:
    """``-i/--input key=value`` (repeatable), parsed into an ``input`` dict."""
    option = click.option(
        "-i",
        "--input",
        "input",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_inputs_callback,
        help="A model input (repeatable). Values are typed: 42, 0.5, true, [1,2], "
        '{"a":1}; @path sends a file; anything else is a string.',
    )
    return option(fn)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Settings).json = True


def _set_limit(ctx: click.Context, _param: click.Parameter, value: int | None) -> None:
    if value is not None:
        ctx.ensure_object(Settings).limit = value


def json_option(fn: F) -> F:
    """``--json``: one JSON object per line instead of a table (same as the global one)."""
    option = click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print JSON (one object per line) instead of a table.",
    )
    return option(fn)


def list_options(fn: F) -> F:
    """``--json`` and ``--limit N`` for list commands."""
    limit = click.option(
        "--limit",
        type=click.IntRange(min=0),
        expose_value=False,
        callback=_set_limit,
        help="At most N items (default: 50 in tables, all with --json; 0 for all).",
    )
    return json_option(limit(fn))
