"""Parameter types and shared options: model inputs, model refs, ``--json``, ``--limit``.

Inputs, as httpie spells them:

- ``-i key=text``: a string, unless the model's schema types ``key`` (then ``steps=20``
  is the integer 20, ``-i text=1984`` stays the string ``"1984"``);
- ``-i key:=json``: raw JSON, whatever the schema (``-i steps:=20``, ``-i 'tags:=["a"]'``);
- ``-i key=@path``: a file, ``-i key=@-``: standard input; the file's text for a string
  input, the file itself for a URI one (see :mod:`._inputs`); ``@@x``: the string ``@x``;
- ``--input-json FILE`` (or ``-``): a JSON object of inputs; ``-i`` pairs override it.

All of them are merged, then checked once against the model's schema (:mod:`._inputs`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._inputs import FileArg, Text
from ._runtime import CLIError, Interrupted, Settings

__all__ = [
    "MODEL_REF",
    "RUN_REF",
    "Text",
    "confirm_option",
    "input_option",
    "json_option",
    "list_options",
    "parse_inputs",
    "set_jq",
]

F = TypeVar("F", bound=Callable[..., Any])
#: How deeply JSON given on the command line may nest (objects and arrays).
MAX_JSON_DEPTH = 100
_VERSION_ID = re.compile(r"[0-9a-f]{64}")

if TYPE_CHECKING:
    _StrType = click.ParamType[str]
else:  # click < 8.2 is not generic at runtime
    _StrType = click.ParamType


class _Ref(_StrType):
    """A model reference, checked by the SDK's own rules before anything is sent."""

    def __init__(self, name: str, example: str, *, versions: bool) -> None:
        self.name = name
        self._example = example
        self._versions = versions

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """Return ``value`` if the SDK accepts it, else fail with an example of the form."""
        from .._checks.url import model_ref, split_version_ref

        if isinstance(value, str):
            if self._versions and _VERSION_ID.fullmatch(value):
                return value
            try:
                (split_version_ref if self._versions else model_ref)(value)
            except ValueError:
                pass
            else:
                return value
        return self.fail(f"{value!r} is not of the form {self._example}", param, ctx)


#: ``owner/name``.
MODEL_REF = _Ref("OWNER/NAME", "owner/name", versions=False)
#: ``owner/name``, ``owner/name:version`` or a 64-hex version id.
RUN_REF = _Ref(
    "OWNER/NAME[:VERSION]", "owner/name, owner/name:version or a version id", versions=True
)


def load_json(text: str | bytes) -> Any:
    """``json.loads``, but a value nested deeper than :data:`MAX_JSON_DEPTH` is a
    ``ValueError`` like any other bad JSON (never a ``RecursionError`` later on)."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(MAX_JSON_DEPTH):
        level = [
            item
            for container in level
            for item in (container.values() if isinstance(container, dict) else container)
            if isinstance(item, dict | list)
        ]
        if not level:
            return value
    raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")


def _stdin_value() -> FileArg:
    return FileArg(data=sys.stdin.buffer.read())


def _value(key: str, sep: str, text: str) -> Any:
    if sep == ":=":
        try:
            return load_json(text)
        except ValueError as exc:
            raise click.BadParameter(
                f"{text[:40]!r} is not valid JSON ({exc}); use {key}=TEXT for a string",
                param_hint=f"'-i {key}'",
            ) from None
    if text == "@-":
        return _stdin_value()
    if text.startswith("@@"):
        return text[1:]
    if text.startswith("@"):
        path = Path(text[1:]).expanduser()
        if not path.is_file():
            raise click.BadParameter(f"no such file: {text[1:]!r}", param_hint=f"'-i {key}'")
        return FileArg(path=path)
    return Text(text)


def parse_inputs(pairs: Sequence[str], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``["prompt=a cat", "steps:=20"]`` -> ``{"prompt": Text("a cat"), "steps": 20}``."""
    result: dict[str, Any] = dict(base or {})
    for pair in pairs:
        match = re.match(r"([^=:]+)(:=|=)", pair)
        if match is None or not match.group(1).strip():
            raise click.BadParameter(f"{pair!r} is not key=value or key:=json", param_hint="'-i'")
        key = match.group(1).strip()
        result[key] = _value(key, match.group(2), pair[match.end() :])
    return result


def _read_json_file(name: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).expanduser().read_text()
        data = load_json(text)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {name}: {exc.strerror}") from None
    except ValueError as exc:
        raise click.BadParameter(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{name} must hold a JSON object of inputs")
    return data


def _inputs_callback(ctx: click.Context, _param: click.Parameter, value: Any) -> dict[str, Any]:
    return parse_inputs(value or (), ctx.meta.get("replicate_async.input_json"))


def _input_json_callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
    if value is not None:
        ctx.meta["replicate_async.input_json"] = _read_json_file(value)


def input_option(fn: F) -> F:
    """``--input-json FILE`` and ``-i key=value`` (repeatable), merged into ``input``."""
    pairs = click.option(
        "-i",
        "--input",
        "input",
        multiple=True,
        metavar="KEY=TEXT|KEY:=JSON",
        callback=_inputs_callback,
        help="A model input (repeatable). key=text is a string unless the model's schema "
        "types it; key:=json is raw JSON; key=@path sends a file, key=@- reads stdin.",
    )
    whole = click.option(
        "--input-json",
        metavar="FILE",
        is_eager=True,
        expose_value=False,
        callback=_input_json_callback,
        help="A JSON object of inputs from FILE ('-': stdin); -i pairs override it.",
    )
    return whole(pairs(fn))


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Settings).json = True


def set_jq(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """Check a ``--jq`` filter now (exit 2 if bad) and keep it in the settings."""
    if value is not None:
        from ._jq import JqError, compile_filter

        try:
            compile_filter(value)
        except JqError as exc:
            raise click.BadParameter(str(exc)) from None
        ctx.ensure_object(Settings).jq = value
        ctx.ensure_object(Settings).json = True


def _set_limit(ctx: click.Context, _param: click.Parameter, value: int | None) -> None:
    if value is not None:
        ctx.ensure_object(Settings).limit = value


def json_option(fn: F) -> F:
    """``--json`` and ``--jq EXPR`` (the same as the global ones)."""
    as_json = click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print the API's objects as JSON, one per line.",
    )
    jq = click.option(
        "--jq",
        metavar="EXPR",
        expose_value=False,
        callback=set_jq,
        help="Print only part of each JSON object: .id, .urls.web, .output[0], .[].",
    )
    return as_json(jq(fn))


def list_options(fn: F) -> F:
    """``--json``, ``--jq`` and ``--limit N`` for list commands."""
    limit = click.option(
        "--limit",
        type=click.IntRange(min=0),
        expose_value=False,
        callback=_set_limit,
        help="At most N items (default: 50, or all with --json; 0 for all).",
    )
    return json_option(limit(fn))


class Declined(CLIError):
    """ "n" at a confirmation: nothing was done, status 1, said without ``Error:``."""

    def show(self, file: Any = None) -> None:
        """Print the message as it is."""
        click.echo(self.format_message(), err=True)


def _ask(question: str) -> bool:
    """``question [y/N]`` on stderr, the answer from the terminal; Ctrl-C is status 130."""
    try:  # a Ctrl-C as soon as the question shows is the same as one at the prompt
        click.echo(f"{question} [y/N]: ", nl=False, err=True)
        answer = input()
    except KeyboardInterrupt:
        click.echo(err=True)
        raise Interrupted("Interrupted: nothing was deleted.") from None
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def confirm_option(kind: str, argument: str) -> Callable[[F], F]:
    """``-y/--yes`` for a command that deletes the ``kind`` named by ``argument``: one rule
    for every delete. Without ``--yes`` it asks on a terminal ("n" exits 1, Ctrl-C 130);
    where nobody can answer (stdin is not a terminal) it refuses with status 2."""

    def confirm(ctx: click.Context, _param: click.Parameter, yes: bool) -> None:
        if yes:
            return
        name = ctx.params.get(argument, f"the {kind}")
        if not sys.stdin.isatty():
            raise click.UsageError(f"deleting {kind} {name} needs --yes when not on a terminal")
        if not _ask(f"Delete {kind} {name}? It cannot be undone"):
            raise Declined(f"Aborted: {kind} {name} was not deleted.")

    return click.option(
        "-y",
        "--yes",
        is_flag=True,
        expose_value=False,
        callback=confirm,
        help="Delete without asking first (needed when not on a terminal).",
    )
