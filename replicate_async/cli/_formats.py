"""What the tables show: columns for lists and fields for detail views, per object type."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models import (
    Account,
    Collection,
    Deployment,
    File,
    Hardware,
    Model,
    Prediction,
    Training,
    Version,
)
from ._output import Column

__all__ = [
    "ACCOUNT_FIELDS",
    "COLLECTION_COLUMNS",
    "COLLECTION_FIELDS",
    "DEPLOYMENT_COLUMNS",
    "DEPLOYMENT_FIELDS",
    "FILE_COLUMNS",
    "FILE_FIELDS",
    "HARDWARE_COLUMNS",
    "INPUT_COLUMNS",
    "MODEL_COLUMNS",
    "MODEL_FIELDS",
    "PREDICTION_COLUMNS",
    "PREDICTION_FIELDS",
    "TRAINING_COLUMNS",
    "TRAINING_FIELDS",
    "VERSION_COLUMNS",
    "InputSpec",
    "input_names",
    "input_specs",
]


def input_names(version: Version | None) -> str | None:
    """The input names a version accepts (from its OpenAPI schema), comma-separated."""
    from .._checks.schema import input_order

    schema = version.openapi_schema if version is not None else None
    if not isinstance(schema, dict):
        return None
    return ", ".join(input_order(schema)) or None


@dataclass(frozen=True)
class InputSpec:
    """One input of a version, as ``models get`` lists it."""

    name: str
    type: str
    default: Any
    required: bool
    description: str


def input_specs(version: Version | None) -> list[InputSpec]:
    """The inputs of a version: type (with choices and bounds), default, required."""
    from .._checks.schema import input_properties, required_inputs

    document = version.openapi_schema if version is not None else None
    required = set(required_inputs(document))
    specs = []
    for name, prop in input_properties(document).items():
        specs.append(
            InputSpec(
                name=name,
                type=_type_text(prop),
                default=prop.get("default"),
                required=name in required,
                description=str(prop.get("description") or ""),
            )
        )
    return specs


def _type_text(prop: Mapping[str, Any]) -> str:
    """``integer 1..4096``, ``string (one of a, b)``, ``string (uri)``, ``array of string``."""
    kind = str(prop.get("type") or "any")
    if kind == "array" and isinstance(prop.get("items"), dict):
        kind = f"array of {prop['items'].get('type') or 'any'}"
    if prop.get("format"):
        kind = f"{kind} ({prop['format']})"
    low, high = prop.get("minimum"), prop.get("maximum")
    if low is not None or high is not None:
        kind = f"{kind} {'' if low is None else low}..{'' if high is None else high}"
    if isinstance(prop.get("enum"), list):
        kind = f"{kind} (one of {', '.join(map(str, prop['enum']))})"
    return kind


INPUT_COLUMNS: tuple[Column[InputSpec], ...] = (
    Column("input", lambda i: i.name),
    Column("type", lambda i: i.type, max_width=40),
    Column("default", lambda i: i.default, max_width=30),
    Column("required", lambda i: i.required),
    Column("description", lambda i: i.description, max_width=60),
)


#: Characters of an input, output or error a detail view shows on a terminal (pipes get
#: everything; ``--json`` the API's object).
LONG_VALUE = 200


def _text(value: Any) -> str | None:
    """A value as one text (JSON unless it is a string)."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _predict_time(run: Prediction | Training) -> str | None:
    seconds = (run.metrics or {}).get("predict_time")
    return f"{seconds:.2f}s" if isinstance(seconds, int | float) else None


def _url(run: Prediction | Training, name: str) -> str | None:
    return getattr(run.urls, name, None) if run.urls is not None else None


def _release(deployment: Deployment, name: str) -> Any:
    release = deployment.current_release
    if release is None:
        return None
    if name in ("hardware", "min_instances", "max_instances"):
        return getattr(release.configuration, name, None) if release.configuration else None
    if name == "created_by":
        return release.created_by.username if release.created_by else None
    return getattr(release, name)


MODEL_COLUMNS: tuple[Column[Model], ...] = (
    Column("model", lambda m: m.ref),
    Column("runs", lambda m: m.run_count),
    Column("description", lambda m: m.description, max_width=60),
)
MODEL_FIELDS: tuple[Column[Model], ...] = (
    Column("model", lambda m: m.ref),
    Column("description", lambda m: m.description),
    Column("visibility", lambda m: m.visibility),
    Column("official", lambda m: m.is_official),
    Column("runs", lambda m: m.run_count),
    Column("latest version", lambda m: m.latest_version.id if m.latest_version else None),
    Column("inputs", lambda m: input_names(m.latest_version)),
    Column("url", lambda m: m.url),
    Column("github", lambda m: m.github_url),
    Column("paper", lambda m: m.paper_url),
    Column("license", lambda m: m.license_url),
    Column("created", lambda m: m.created_at),
)
VERSION_COLUMNS: tuple[Column[Version], ...] = (
    Column("id", lambda v: v.id),
    Column("created", lambda v: v.created_at, max_width=19),
    Column("inputs", input_names, max_width=50),
)
PREDICTION_COLUMNS: tuple[Column[Prediction], ...] = (
    Column("id", lambda p: p.id),
    Column("model", lambda p: p.model, max_width=40),
    Column("status", lambda p: p.status),
    Column("created", lambda p: p.created_at, max_width=19),
    Column("time", _predict_time),
)
PREDICTION_FIELDS: tuple[Column[Prediction], ...] = (
    Column("id", lambda p: p.id),
    Column("model", lambda p: p.model),
    Column("version", lambda p: p.version),
    Column("deployment", lambda p: p.deployment),
    Column("status", lambda p: p.status),
    Column("input", lambda p: _text(p.input), max_width=LONG_VALUE),
    Column("output", lambda p: _text(p.output), max_width=LONG_VALUE),
    Column("error", lambda p: _text(p.error), max_width=LONG_VALUE),
    Column("created", lambda p: p.created_at),
    Column("started", lambda p: p.started_at),
    Column("completed", lambda p: p.completed_at),
    Column("predict time", _predict_time),
    Column("web", lambda p: _url(p, "web")),
    Column("stream", lambda p: _url(p, "stream")),
)
TRAINING_COLUMNS: tuple[Column[Training], ...] = (
    Column("id", lambda t: t.id),
    Column("model", lambda t: t.model, max_width=40),
    Column("status", lambda t: t.status),
    Column("created", lambda t: t.created_at, max_width=19),
)
TRAINING_FIELDS: tuple[Column[Training], ...] = (
    Column("id", lambda t: t.id),
    Column("model", lambda t: t.model),
    Column("version", lambda t: t.version),
    Column("destination", lambda t: t.destination),
    Column("status", lambda t: t.status),
    Column("input", lambda t: _text(t.input), max_width=LONG_VALUE),
    Column("output", lambda t: _text(t.output), max_width=LONG_VALUE),
    Column("error", lambda t: _text(t.error), max_width=LONG_VALUE),
    Column("created", lambda t: t.created_at),
    Column("completed", lambda t: t.completed_at),
    Column("web", lambda t: _url(t, "web")),
)
COLLECTION_COLUMNS: tuple[Column[Collection], ...] = (
    Column("slug", lambda c: c.slug),
    Column("name", lambda c: c.name, max_width=30),
    Column("description", lambda c: c.description, max_width=70),
)
COLLECTION_FIELDS: tuple[Column[Collection], ...] = (
    Column("slug", lambda c: c.slug),
    Column("name", lambda c: c.name),
    Column("description", lambda c: c.description),
    Column("models", lambda c: len(c.models) if c.models is not None else None),
)
HARDWARE_COLUMNS: tuple[Column[Hardware], ...] = (
    Column("sku", lambda h: h.sku),
    Column("name", lambda h: h.name),
)
DEPLOYMENT_COLUMNS: tuple[Column[Deployment], ...] = (
    Column("deployment", lambda d: d.ref, max_width=40),
    Column("release", lambda d: _release(d, "number")),
    Column("model", lambda d: _release(d, "model"), max_width=40),
    Column("hardware", lambda d: _release(d, "hardware")),
    Column("min", lambda d: _release(d, "min_instances")),
    Column("max", lambda d: _release(d, "max_instances")),
)
DEPLOYMENT_FIELDS: tuple[Column[Deployment], ...] = (
    *DEPLOYMENT_COLUMNS,
    Column("version", lambda d: _release(d, "version")),
    Column("created", lambda d: _release(d, "created_at")),
    Column("created by", lambda d: _release(d, "created_by")),
)
FILE_COLUMNS: tuple[Column[File], ...] = (
    Column("id", lambda f: f.id),
    Column("name", lambda f: f.name, max_width=40),
    Column("type", lambda f: f.content_type, max_width=30),
    Column("size", lambda f: f.size),
    Column("created", lambda f: f.created_at, max_width=19),
    Column("expires", lambda f: f.expires_at, max_width=19),
)
FILE_FIELDS: tuple[Column[File], ...] = (
    *FILE_COLUMNS,
    Column("checksums", lambda f: f.checksums),
    Column("metadata", lambda f: f.metadata or None),
    Column("url", lambda f: (f.urls or {}).get("get")),
)
ACCOUNT_FIELDS: tuple[Column[Account], ...] = (
    Column("username", lambda a: a.username),
    Column("name", lambda a: a.name),
    Column("type", lambda a: a.type),
    Column("github", lambda a: a.github_url),
)
