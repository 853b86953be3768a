"""Typed Python modules for models: ``replicate-async codegen owner/name[:version]``.

A generated module has a ``TypedDict`` of the model's inputs (``Required``/``NotRequired``,
``Literal`` enums, each input documented with its description, default and bounds) and an
``async def`` that runs the model through :meth:`AsyncReplicate.use` (one model function
per client, so the schema is fetched once), returning the output type the schema states.
The code passes ``mypy --strict`` and ``ruff``.
"""

from __future__ import annotations

import builtins
import json
import keyword
import re
import textwrap
from collections.abc import Mapping
from typing import Any

from .._checks.schema import input_order, input_schema, output_schema
from .._checks.walk import Walker
from ..exceptions import SchemaError

__all__ = ["MAX_INPUTS", "generate_module", "python_name"]

_WIDTH = 100  # the line length ruff checks and formats to
_DOC_WIDTH = 96
_FILE = "FileInput"
#: What the module imports from typing, in isort's order (CONSTANTS, Classes, functions).
_TYPING = ("IO", "Any", "Literal", "NotRequired", "Required", "TypedDict", "Unpack", "cast")
#: Every name a generated module binds or reads besides its own aliases: a generated
#: name never takes one of these, and the input class is written in the functional
#: ``TypedDict("X", {...})`` form (string keys, binding nothing) whenever an input's name
#: is one of them, so no input name can shadow a type the module refers to.
_RESERVED = frozenset(
    {*_TYPING, *dir(builtins), *keyword.kwlist, *keyword.softkwlist}
    | {"os", "annotations", "AsyncReplicate", "ModelFunction", "SchemaCache", _FILE}
    | {"MODEL", "VERSION", "SCHEMA"}
)
#: The builtins the module's annotations use (a class-body field of that name would
#: shadow them).
_ANNOTATION_BUILTINS = frozenset({"str", "int", "float", "bool", "list", "dict", "bytes"})
#: The most inputs a generated module types (the largest recorded model has about 30).
MAX_INPUTS = 1_000
_LONGEST_TEXT = 2_000  # characters of a description or default a docstring shows
_LITERAL_INT = 2**63  # ints beyond this are not written as Literal values


def python_name(text: str) -> str:
    """A snake_case identifier for a model or input name (``meta-llama-3`` → ``meta_llama_3``).

    The one sanitiser every generated name goes through: ASCII letters, digits and
    underscores only (``café²`` → ``caf``), never starting with a digit, never a keyword."""
    name = re.sub(r"[^0-9A-Za-z]+", "_", str(text)).strip("_").lower()[:80] or "model"
    if name[0].isdigit():
        name = f"model_{name}"
    return f"{name}_" if keyword.iskeyword(name) or keyword.issoftkeyword(name) else name


def _class_name(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in python_name(text).split("_"))


def _literal(value: Any) -> str:
    """A Python literal for a JSON scalar (ASCII only, double quotes unless the text has
    more double quotes than single ones, as ruff formats it)."""
    if isinstance(value, str):
        quote = "'" if value.count('"') > value.count("'") else '"'
        return quote + "".join(_escaped(c, quote) for c in value) + quote
    if value is None or isinstance(value, bool):
        return {None: "None", True: "True", False: "False"}[value]
    return repr(value)


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str, quote: str) -> str:
    """One character inside a Python string literal: printable ASCII as itself, the rest as
    Python escapes (``\\U0001f600``, not JSON's surrogate pairs, which Python reads as two
    lone surrogates)."""
    code = ord(char)
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char == quote:
        return "\\" + char
    if 32 <= code < 127:
        return char
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _ascii(text: str) -> str:
    """Text safe inside a generated docstring: ASCII, no closing quotes or backslashes."""
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return "".join(c if 32 <= ord(c) < 127 or c == "\n" else f"\\u{ord(c):04x}" for c in text)


def _docstring(text: str, indent: str) -> list[str]:
    words = " ".join(_ascii(text).split())
    if words.endswith('"'):
        words += " "
    one = f'{indent}"""{words}"""'
    if len(one) <= _DOC_WIDTH:
        return [one]
    width = _DOC_WIDTH - len(indent)
    body = textwrap.wrap(words, width, break_on_hyphens=False, break_long_words=False)
    return [f'{indent}"""', *(f"{indent}{line}" for line in body), f'{indent}"""']


class _Types:
    """Python type expressions for schema nodes; collects the aliases and imports used."""

    def __init__(self, document: Mapping[str, Any], prefix: str, taken: set[str]) -> None:
        self.walker = Walker(document)  # one budget for the whole module
        self.prefix = prefix
        self.taken = taken  # names the module binds: no alias may take one
        self.aliases: dict[str, str] = {}
        self.names: set[str] = set()  # what the module refers to (its import list)

    def flat(self, node: Any) -> Mapping[str, Any]:
        """The node flattened, or ``{}`` (typed ``Any``) when the schema is too complex."""
        try:
            return self.walker.flatten(node)
        except SchemaError:
            return {}

    def of(self, node: Any, hint: str, *, accept_files: bool, depth: int = 0) -> str:
        prop = self.flat(node)
        enum = prop.get("enum")
        if isinstance(enum, list) and enum and all(_literal_ok(v) for v in enum):
            return self.alias(hint, enum)
        kind = prop.get("type")
        if kind == "string":
            if accept_files and prop.get("format") == "uri":
                self.names.update((_FILE, "IO", "os"))
                return _FILE
            return "str"
        items = prop.get("items")
        if kind == "array" and isinstance(items, Mapping) and depth < _MAX_NESTING:
            return f"list[{self.of(items, hint, accept_files=accept_files, depth=depth + 1)}]"
        simple = {"integer": "int", "number": "float", "boolean": "bool", "string": "str"}
        if not isinstance(kind, str):  # str() of a strange value may fail (a 5,000-digit int)
            kind = None
        elif kind in simple:
            return simple[kind]
        self.names.add("Any")
        return {"object": "dict[str, Any]", "array": "list[Any]"}.get(str(kind), "Any")

    def alias(self, hint: str, values: list[Any]) -> str:
        self.names.add("Literal")
        body = _literal_body(values)
        name = f"{self.prefix}{_class_name(hint)}"
        while name in self.taken or name in _RESERVED or self.aliases.get(name, body) != body:
            name += "_"
        self.aliases[name] = body
        return name

    def output(self) -> str:
        node = output_schema(self.walker.document)
        if node is None:
            self.names.add("Any")
            return "Any"
        prop = self.flat(node)
        if prop.get("x-cog-array-type") == "iterator" and prop.get("x-cog-array-display") == (
            "concatenate"
        ):
            return "str"  # joined into one text by the model function
        return self.of(prop, "output", accept_files=False)


#: How deep ``list[list[...]]`` types are written; deeper arrays are ``list[Any]``.
_MAX_NESTING = 8


def _literal_ok(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return -_LITERAL_INT < value < _LITERAL_INT
    return isinstance(value, str | bool) or value is None


def _literal_body(values: list[Any]) -> str:
    return "\n".join(f"    {_literal(v)}," for v in values)


def _text(value: Any) -> str:
    """A schema value as docstring text, bounded (never fails on a strange one)."""
    if isinstance(value, str):
        return value[:_LONGEST_TEXT]
    if _literal_ok(value):
        return _literal(value)
    if isinstance(value, float):
        return repr(value)
    try:
        return json.dumps(value)[:_LONGEST_TEXT]
    except (TypeError, ValueError, RecursionError):
        return "(not shown)"


def _field_doc(prop: Mapping[str, Any]) -> str:
    about = prop.get("description") or prop.get("title") or ""
    parts = [(about[:_LONGEST_TEXT] if isinstance(about, str) else "").strip().rstrip(".")]
    low, high = (_bound(prop.get(key)) for key in ("minimum", "maximum"))
    if low is not None and high is not None:
        parts.append(f"Between {low} and {high}")
    elif low is not None or high is not None:
        parts.append(f"At least {low}" if low is not None else f"At most {high}")
    if "default" in prop:
        parts.append(f"Default: {_text(prop['default'])}")
    return ". ".join(p for p in parts if p) + "."


def _bound(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return _text(value) if isinstance(value, float) or _literal_ok(value) else "(large)"


def generate_module(
    ref: str,
    openapi_schema: Mapping[str, Any],
    *,
    version: str | None = None,
    description: str | None = None,
    name: str | None = None,
) -> str:
    """The source of a typed module for the model ``ref`` (what ``client.use`` is given).

    ``openapi_schema`` is the version's schema; ``version`` its id (for the header);
    ``name`` the function's name (default: from the model's name). A schema with more than
    ``MAX_INPUTS`` inputs raises :class:`SchemaError`; parts of a schema beyond the walking
    budgets are typed ``Any``.
    """
    count = len(input_order(openapi_schema))
    if count > MAX_INPUTS:
        raise SchemaError(f"too complex for codegen ({count} inputs; at most {MAX_INPUTS})")
    model_name = ref.split(":")[0].split("/")[-1]
    func = python_name(name or model_name)
    while func in _RESERVED:  # the module's own names, builtins and imports
        func += "_"
    prefix = _class_name(func)
    cls = f"{prefix}Input"
    types = _Types(openapi_schema, prefix, {cls, func, f"{func}_function"})
    fields = _fields(openapi_schema, types)
    returns = types.output()
    lines = [
        *_docstring(f"Typed inputs and an async function for the Replicate model {ref}.", ""),
        "",
        *_imports(types.names | _class_names(cls, fields) | _function_names(returns)),
        "",
        "# Generated by `replicate-async codegen`; regenerate rather than edit.",
        *([f"# Version: {' '.join(_ascii(version).split())}"] if version else []),
        *_model_line(ref),
        "",
    ]
    if _FILE in types.names:
        lines += [
            "#: A URL, or a file the client uploads (a path, bytes or a binary file).",
            f"{_FILE} = str | os.PathLike[str] | bytes | IO[bytes]",
            "",
        ]
    for alias, body in types.aliases.items():
        # One per line (a magic trailing comma); a lone value stays on one line, as ruff wants.
        one = body.count("\n") == 0
        lines += [
            f"{alias} = Literal[{body.strip()[:-1]}]" if one else f"{alias} = Literal[\n{body}\n]",
            "",
        ]
    shadowing = {*_ANNOTATION_BUILTINS, *_TYPING, "os", _FILE, *types.aliases, cls}
    lines += ["", *_input_class(cls, ref, fields, shadowing), ""]
    lines += _functions(func, cls, returns, description or ref.split(":")[0])
    return "\n".join(lines).rstrip() + "\n"


def _fields(document: Mapping[str, Any], types: _Types) -> list[tuple[str, str, str]]:
    inputs = input_schema(document) or {}
    props = inputs.get("properties")
    props = props if isinstance(props, Mapping) else {}
    required = inputs.get("required")
    required = {k for k in required if isinstance(k, str)} if isinstance(required, list) else set()
    fields = []
    for key in input_order(document):
        prop = props.get(key)
        if not isinstance(prop, Mapping):
            continue
        kind = types.of(prop, key, accept_files=True)
        wrapped = f"Required[{kind}]" if key in required else f"NotRequired[{kind}]"
        fields.append((key, wrapped, _field_doc(types.flat(prop))))
    return fields


def _class_names(cls: str, fields: list[tuple[str, str, str]]) -> set[str]:
    return {"TypedDict", *(kind.partition("[")[0] for _, kind, _ in fields)}


def _function_names(returns: str) -> set[str]:
    return {"Unpack"} if returns == "Any" else {"Unpack", "cast"}


def _imports(names: set[str]) -> list[str]:
    """The import block: exactly the names the generated code refers to (collected while
    writing it, never read back from the text), sorted like isort."""
    lines = ["from __future__ import annotations", ""]
    if "os" in names:
        lines.append("import os")
    lines += [f"from typing import {', '.join(n for n in _TYPING if n in names)}", ""]
    lines.append("from replicate_async import AsyncReplicate, ModelFunction, SchemaCache")
    return lines


def _input_class(
    cls: str, ref: str, fields: list[tuple[str, str, str]], shadowing: set[str]
) -> list[str]:
    """The inputs' TypedDict: a class, unless an input's name is not an ASCII identifier or
    is a name the module refers to (a field named ``dict`` or ``Required`` would shadow it in
    the class body); then the functional form, whose keys are strings."""
    odd = any(not _is_field_name(key) for key, _, _ in fields)
    if odd or any(key in shadowing for key, _, _ in fields):
        items = [f"        {_literal(key)}: {kind}," for key, kind, _ in fields]
        start = f"{cls} = TypedDict(" + ("" if odd else "  # noqa: UP013")
        return [start, f"    {_literal(cls)},", "    {", *items, "    },", ")"]
    lines = [f"class {cls}(TypedDict, total=False):"]
    lines += _docstring(f"The inputs of {ref.split(':')[0]}.", "    ")
    for key, kind, doc in fields:
        lines += ["", f"    {key}: {kind}", *_docstring(doc, "    ")]
    return lines


def _is_field_name(key: str) -> bool:
    # ASCII only: the parser NFKC-normalises other identifiers ("ﬁle" would become "file").
    return key.isascii() and key.isidentifier() and not keyword.iskeyword(key)


def _model_line(ref: str) -> list[str]:
    model, _, version = ref.partition(":")
    if not version:
        return [f"MODEL = {_literal(ref)}"]
    if re.fullmatch(r"[\w./-]+", model, re.ASCII) is None:  # not a ref: no f-string
        return [f"VERSION = {_literal(version)}", f"MODEL = {_literal(model + ':')} + VERSION"]
    # Two short lines, whatever the name's length.
    return [f"VERSION = {_literal(version)}", f'MODEL = f"{model}:{{VERSION}}"']


def _signature(func: str, cls: str, returns: str) -> list[str]:
    params = f"client: AsyncReplicate, /, **input: Unpack[{cls}]"
    one = f"async def {func}({params}) -> {returns}:"
    return (
        [one] if len(one) <= _WIDTH else [f"async def {func}(", f"    {params}", f") -> {returns}:"]
    )


def _functions(func: str, cls: str, returns: str, about: str) -> list[str]:
    result = "await model(**input)"
    body = f"    return {result}" if returns == "Any" else f"    return cast({returns}, {result})"
    return [
        "",
        "#: The model's schema, fetched at the first call and kept for every client's calls.",
        "SCHEMA = SchemaCache()",
        "",
        "",
        f"def {func}_function(client: AsyncReplicate) -> ModelFunction:",
        '    """The model as a function of ``client``, for ``.create``, ``.stream`` and',
        '    ``.with_options`` (its schema is fetched once, whatever the client)."""',
        "    return client.use(MODEL).sharing(SCHEMA)",
        "",
        "",
        *_signature(func, cls, returns),
        *_docstring(f"Run {about} and return its output.", "    "),
        f"    model = {func}_function(client)",
        body,
    ]
