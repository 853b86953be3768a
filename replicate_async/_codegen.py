"""Typed Python modules for models: ``replicate-async codegen owner/name[:version]``.

A generated module has a ``TypedDict`` of the model's inputs (``Required``/``NotRequired``,
``Literal`` enums, each input documented with its description, default and bounds) and an
``async def`` that runs the model through :meth:`AsyncReplicate.use` (one model function
per client, so the schema is fetched once), returning the output type the schema states.
The code passes ``mypy --strict`` and ``ruff``.
"""

from __future__ import annotations

import json
import keyword
import re
import textwrap
from collections.abc import Mapping
from typing import Any

from ._schema import flatten, input_order, input_schema, output_schema

__all__ = ["generate_module", "python_name"]

_WIDTH = 100  # the line length ruff checks and formats to
_DOC_WIDTH = 96
_FILE = "FileInput"
_TAKEN = frozenset({"cast", "os", "annotations"})
_IMPORTS = "\0imports\0"  # where the import block goes once the code is known


def python_name(text: str) -> str:
    """A snake_case identifier for a model or input name (``meta-llama-3`` → ``meta_llama_3``)."""
    name = re.sub(r"\W+", "_", text).strip("_").lower() or "model"
    if name[0].isdigit():
        name = f"model_{name}"
    return f"{name}_" if keyword.iskeyword(name) else name


def _class_name(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in python_name(text).split("_"))


def _literal(value: Any) -> str:
    """A Python literal for a JSON scalar (ASCII only, double quotes)."""
    if isinstance(value, str):
        text = json.dumps(value)
        if value.count('"') > value.count("'"):  # ruff's quote preference
            return "'" + text[1:-1].replace('\\"', '"').replace("'", "\\'") + "'"
        return text
    if value is None or isinstance(value, bool):
        return {None: "None", True: "True", False: "False"}[value]
    return repr(value)


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

    def __init__(self, document: Mapping[str, Any], prefix: str) -> None:
        self.document = document
        self.prefix = prefix
        self.aliases: dict[str, str] = {}
        self.imports: set[str] = set()  # names the module must define (FileInput)

    def of(self, node: Mapping[str, Any], hint: str, *, accept_files: bool) -> str:
        prop = flatten(node, self.document)
        enum = prop.get("enum")
        if isinstance(enum, list) and enum and all(_literal_ok(v) for v in enum):
            return self.alias(hint, enum)
        kind = prop.get("type")
        if kind == "string":
            if accept_files and prop.get("format") == "uri":
                self.imports.add(_FILE)
                return _FILE
            return "str"
        if kind == "array":
            items = prop.get("items")
            item = (
                self.of(items, hint, accept_files=accept_files)
                if isinstance(items, Mapping)
                else "Any"
            )
            return f"list[{item}]"
        simple = {
            "integer": "int",
            "number": "float",
            "boolean": "bool",
            "object": "dict[str, Any]",
        }
        return simple.get(str(kind), "Any")

    def alias(self, hint: str, values: list[Any]) -> str:
        name = f"{self.prefix}{_class_name(hint)}"
        taken = {f"{self.prefix}Input", _FILE}  # the module's other names
        while name in taken or (
            name in self.aliases and self.aliases[name] != _literal_body(values)
        ):
            name += "_"
        self.aliases[name] = _literal_body(values)
        return name

    def output(self) -> str:
        node = output_schema(self.document)
        if node is None:
            return "Any"
        prop = flatten(node, self.document)
        if prop.get("x-cog-array-type") == "iterator" and prop.get("x-cog-array-display") == (
            "concatenate"
        ):
            return "str"  # joined into one text by the model function
        return self.of(prop, "output", accept_files=False)


def _literal_ok(value: Any) -> bool:
    return isinstance(value, str | bool | int) or value is None


def _literal_body(values: list[Any]) -> str:
    return "\n".join(f"    {_literal(v)}," for v in values)


def _field_doc(prop: Mapping[str, Any]) -> str:
    parts = [str(prop.get("description") or prop.get("title") or "").strip().rstrip(".")]
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is not None and high is not None:
        parts.append(f"Between {low} and {high}")
    elif low is not None or high is not None:
        parts.append(f"At least {low}" if low is not None else f"At most {high}")
    if "default" in prop:
        default = prop["default"]
        shown = _literal(default) if _literal_ok(default) else json.dumps(default)
        parts.append(f"Default: {shown}")
    return ". ".join(p for p in parts if p) + "."


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
    ``name`` the function's name (default: from the model's name).
    """
    model_name = ref.split(":")[0].split("/")[-1]
    func = python_name(name or model_name)
    if func in _TAKEN:  # the module's own imports
        func += "_"
    prefix = _class_name(func)
    types = _Types(openapi_schema, prefix)
    fields = _fields(openapi_schema, types)
    returns = types.output()
    lines = [
        *_docstring(f"Typed inputs and an async function for the Replicate model {ref}.", ""),
        "",
        _IMPORTS,
        "",
        "# Generated by `replicate-async codegen`; regenerate rather than edit.",
        *([f"# Version: {version}"] if version else []),
        *_model_line(ref),
        "",
    ]
    if _FILE in types.imports:
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
    lines += ["", *_input_class(f"{prefix}Input", ref, fields), ""]
    lines += _functions(func, f"{prefix}Input", returns, description or ref.split(":")[0])
    code = "\n".join(lines).rstrip() + "\n"
    return code.replace(_IMPORTS, "\n".join(_imports(code)), 1)


def _fields(document: Mapping[str, Any], types: _Types) -> list[tuple[str, str, str]]:
    inputs = input_schema(document) or {}
    props: Mapping[str, Any] = inputs.get("properties") or {}
    required = set(inputs.get("required") or ())
    fields = []
    for key in input_order(document):
        prop = props[key]
        if not isinstance(prop, Mapping):
            continue
        kind = types.of(prop, key, accept_files=True)
        wrapped = f"Required[{kind}]" if key in required else f"NotRequired[{kind}]"
        fields.append((key, wrapped, _field_doc(flatten(prop, document))))
    return fields


def _imports(code: str) -> list[str]:
    """The import block for ``code``: only the names it uses (ruff's F401), sorted like
    isort (CONSTANTS, Classes, functions)."""
    names = ("IO", "Any", "Literal", "NotRequired", "Required", "TypedDict", "Unpack", "cast")
    bare = re.sub(r'"""[\s\S]*?"""|"(?:[^"\\\n]|\\.)*"|#.*', "", code)  # no docs or strings
    used = [n for n in names if re.search(rf"(?<![\w.]){n}\b", bare)]
    lines = ["from __future__ import annotations", ""]
    if "os.PathLike" in code:
        lines.append("import os")
    lines += [f"from typing import {', '.join(used)}", ""]
    lines.append("from replicate_async import AsyncReplicate, ModelFunction, SchemaCache")
    return lines


def _input_class(cls: str, ref: str, fields: list[tuple[str, str, str]]) -> list[str]:
    if any(not key.isidentifier() or keyword.iskeyword(key) for key, _, _ in fields):
        items = [f"        {_literal(key)}: {kind}," for key, kind, _ in fields]
        return [f"{cls} = TypedDict(", f"    {_literal(cls)},", "    {", *items, "    },", ")"]
    lines = [f"class {cls}(TypedDict, total=False):"]
    lines += _docstring(f"The inputs of {ref.split(':')[0]}.", "    ")
    for key, kind, doc in fields:
        lines += ["", f"    {key}: {kind}", *_docstring(doc, "    ")]
    return lines


def _model_line(ref: str) -> list[str]:
    model, _, version = ref.partition(":")
    if not version:
        return [f"MODEL = {_literal(ref)}"]
    # Two short lines, whatever the name's length (refs never contain quotes or braces).
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
