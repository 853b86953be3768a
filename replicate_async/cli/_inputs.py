"""Model inputs from the command line, checked once against the model's schema before
anything is sent.

Every source is merged first (``--input-json``, then each ``-i``), then the whole input is
resolved by the schema of the version that will run, whichever way the values came:

- an input name the schema does not know is an error, with the closest known name
  (``max_token``: did you mean ``max_tokens``?), unless the schema allows extra inputs;
- ``key=text`` is typed by the schema (``steps=20`` is 20 where it says integer);
- ``key=@path`` and ``key=@-`` follow the schema: the file's text for a ``string`` input,
  the file itself (uploaded, or inlined when small) for a ``format: uri`` one;
- then every problem the API would answer with a 422 is reported at once (exit status 2).

Without a schema (a bare version id) values keep their command-line meaning: text is a
string, ``@path`` a file, ``@-`` text when it is UTF-8.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._runtime import ArgumentError

if TYPE_CHECKING:
    from .. import AsyncReplicate

__all__ = ["FileArg", "Text", "model_schema", "resolve_inputs", "training_schema"]

#: Problems listed in one error line at most (the rest are counted).
MAX_PROBLEMS = 10


class Text(str):
    """A ``key=text`` value: typed by the model's schema later (a string otherwise)."""

    __slots__ = ()


@dataclass(frozen=True)
class FileArg:
    """``key=@path`` (``path``) or ``key=@-`` (``data``, read from stdin once)."""

    path: Path | None = None
    data: bytes | None = None

    @property
    def name(self) -> str:
        """The file as the user typed it."""
        return str(self.path) if self.path is not None else "standard input"

    def as_file(self) -> Any:
        """What the SDK uploads (or inlines): the path, or the bytes."""
        return self.path if self.path is not None else self.data

    def as_text(self, key: str) -> str:
        """The file's text (UTF-8), for a string input."""
        try:
            data = self.path.read_bytes() if self.path is not None else self.data or b""
            return data.decode()
        except OSError as exc:
            raise ArgumentError(f"-i {key}: cannot read {self.name}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ArgumentError(
                f"-i {key}: the input {key!r} takes text, and {self.name} is not UTF-8 text"
            ) from None

    def unschematized(self) -> Any:
        """Without a schema: a path stays a file; stdin is text when it is UTF-8."""
        if self.path is not None:
            return self.path
        try:
            return (self.data or b"").decode()
        except UnicodeDecodeError:
            return self.data


async def model_schema(client: AsyncReplicate, ref: str, *, deployment: bool) -> Any:
    """The OpenAPI schema of the version ``ref`` runs (``None`` for a bare version id).

    ``owner/name`` must be an official model (only those run without a version): for any
    other, this says which version to give, before anything is uploaded or created.
    """
    if deployment:
        found = await client.deployments.get(ref)
        release = found.current_release
        if release is None or not release.model or not release.version:
            return None
        return (await client.models.versions.get(release.model, release.version)).openapi_schema
    if "/" not in ref:
        return None
    model, _, version = ref.partition(":")
    if version:
        return (await client.models.versions.get(model, version)).openapi_schema
    found_model = await client.models.get(model)
    latest = found_model.latest_version
    if found_model.is_official is False:
        example = f"{model}:{latest.id}" if latest is not None else f"{model}:VERSION"
        raise ArgumentError(
            f"{model} is not an official model, so it runs only at a given version: "
            f"e.g. {example}" + (" (its latest)" if latest is not None else "")
        )
    return latest.openapi_schema if latest is not None else None


def training_schema(openapi_schema: Any) -> Any:
    """The version's schema with its ``TrainingInput`` in the place of ``Input`` (so the
    same checks apply to a training's inputs); ``None`` when it describes none."""
    if not isinstance(openapi_schema, Mapping):
        return None
    components = openapi_schema.get("components")
    if not isinstance(components, Mapping):
        return None
    schemas = components.get("schemas")
    if not isinstance(schemas, Mapping) or "TrainingInput" not in schemas:
        return None
    swapped = {**schemas, "Input": schemas["TrainingInput"]}
    return {**openapi_schema, "components": {**components, "schemas": swapped}}


def _unknown_names(
    inputs: Mapping[str, Any], input_schema: Mapping[str, Any], document: Mapping[str, Any]
) -> None:
    """Refuse names the schema does not know (exit 2), with the closest known ones."""
    from .._checks.schema import input_order

    extra = input_schema.get("additionalProperties")
    if extra is True or isinstance(extra, Mapping):
        return
    props = input_schema.get("properties")
    if not isinstance(props, Mapping):  # a malformed schema: no names to hold inputs to
        return
    unknown = [key for key in inputs if key not in props]
    if not unknown:
        return
    hints = []
    for key in unknown[:MAX_PROBLEMS]:
        close = difflib.get_close_matches(key, list(props), n=1, cutoff=0.6)
        hints.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
    more = f" and {len(unknown) - MAX_PROBLEMS} more" if len(unknown) > MAX_PROBLEMS else ""
    known = ", ".join(input_order(document)[:20]) or "none"
    noun = "input" if len(unknown) == 1 else "inputs"
    raise ArgumentError(
        f"the model has no {noun} {', '.join(hints)}{more}; its inputs are: {known}"
    )


def _text_value(prop: Mapping[str, Any] | None, text: str, document: Any) -> Any:
    """``key=text`` typed by the input's schema (text that does not fit stays text, and
    the schema check then reports it)."""
    from .._checks.schema import coerce_cli_value

    if prop is None:
        return text
    if text.startswith("@"):  # the file forms were parsed already; @@ is plain text here
        return text
    try:
        return coerce_cli_value(prop, text, document=document)
    except (ValueError, RecursionError):  # huge numbers, deep JSON: left to the check
        return text


def _file_value(key: str, prop: Mapping[str, Any] | None, value: FileArg, document: Any) -> Any:
    """``key=@file`` as the input's schema types it: text for a plain string, the file
    for a URI (and one item of either for an array)."""
    from .._checks.schema import SchemaError, flatten

    if prop is None:
        return value.unschematized()
    try:
        flat = flatten(prop, document)
    except SchemaError:  # beyond the walking budget: no known type, so no guess
        return value.unschematized()
    if flat.get("type") == "array":
        items = flat.get("items")
        return [_file_value(key, items if isinstance(items, Mapping) else None, value, document)]
    if flat.get("type") == "string" and flat.get("format") != "uri":
        return value.as_text(key)
    return value.as_file()


def resolve_inputs(inputs: Mapping[str, Any], openapi_schema: Any = None) -> dict[str, Any]:
    """The input to send: every value resolved by the schema, then checked (see module)."""
    from .._checks.schema import check_input, input_properties, input_schema

    schema = input_schema(openapi_schema) if isinstance(openapi_schema, Mapping) else None
    if schema is not None:
        _unknown_names(inputs, schema, openapi_schema)
    props = input_properties(openapi_schema) if schema is not None else {}
    resolved: dict[str, Any] = {}
    for key, value in inputs.items():
        prop = props.get(key) if schema is not None else None
        if isinstance(value, Text):
            resolved[key] = _text_value(prop, str(value), openapi_schema)
        elif isinstance(value, FileArg):
            resolved[key] = _file_value(key, prop, value, openapi_schema)
        else:
            resolved[key] = value
    if schema is not None:
        problems = check_input(openapi_schema, resolved)
        if problems:
            listed = "; ".join(str(problem) for problem in problems[:MAX_PROBLEMS])
            more = len(problems) - MAX_PROBLEMS
            listed += f"; and {more} more" if more > 0 else ""
            raise ArgumentError(f"the inputs do not fit the model's schema: {listed}")
    return resolved
