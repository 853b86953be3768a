"""Typed objects returned by the API.

Attribute names are the API's JSON field names. Every field but an object's identity is
optional, because real responses omit fields depending on age and state. Fields the SDK
does not know yet are kept: ``obj.raw`` is the JSON object exactly as received.
Statuses are plain strings so that a status added by Replicate tomorrow passes through;
:data:`Status` is the ``Literal`` of the ones known today, to compare against.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar, get_args

import attrs

from ._literals import Status

__all__ = [
    "KNOWN_STATUSES",
    "TERMINAL_STATUSES",
    "Account",
    "Collection",
    "Deployment",
    "DeploymentConfiguration",
    "DeploymentRelease",
    "File",
    "Hardware",
    "Model",
    "Page",
    "Prediction",
    "PredictionURLs",
    "SearchCollection",
    "SearchModel",
    "SearchModelMetadata",
    "SearchPage",
    "SearchResult",
    "Status",
    "Training",
    "Version",
    "WebhookSecret",
]

T = TypeVar("T")


#: Statuses after which a prediction or training never changes again.
TERMINAL_STATUSES: frozenset[Status] = frozenset({"succeeded", "failed", "canceled", "aborted"})

#: Every status known today (``Status``); ``status`` fields may hold others.
KNOWN_STATUSES: frozenset[Status] = frozenset(get_args(Status))

_RAW: Any = attrs.field(factory=dict, repr=False, eq=False, kw_only=True)

DumpMode = Literal["api", "python"]


class _Dumpable:
    """``to_dict()`` and ``to_json()``, shared by every result model."""

    __slots__ = ()

    def to_dict(self, *, mode: DumpMode = "api", exclude_unset: bool = False) -> dict[str, Any]:
        """This object as plain data, keyed by the API's field names.

        ``mode="api"`` gives the JSON the API would send: timestamps as RFC 3339 strings,
        and the fields this SDK does not know yet (kept in ``raw``) included.
        ``mode="python"`` gives the known fields only, with Python values (``datetime``).
        ``exclude_unset=True`` leaves out the fields the response did not carry (for an
        object built by hand: the fields left at their default).
        """
        return _to_dict(self, mode, exclude_unset)

    def to_json(self, *, indent: int | None = None, exclude_unset: bool = False) -> str:
        """:meth:`to_dict` in ``"api"`` mode, encoded as JSON text."""
        data = self.to_dict(exclude_unset=exclude_unset)
        return json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False)


def _to_dict(obj: Any, mode: DumpMode, exclude_unset: bool) -> dict[str, Any]:
    """One model object as a dict (see :meth:`_Dumpable.to_dict`). The reverse of the
    converter's structuring needs no hooks: fields are plain values, models, lists."""
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
        out[field.name] = _plain(value, mode, exclude_unset)
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
    return default is attrs.NOTHING or value != default


def _plain(value: Any, mode: DumpMode, exclude_unset: bool) -> Any:
    if isinstance(value, _Dumpable):
        return _to_dict(value, mode, exclude_unset)
    if isinstance(value, list):
        return [_plain(item, mode, exclude_unset) for item in value]
    if isinstance(value, datetime) and mode == "api":
        # RFC 3339, with "Z" for UTC as the API writes it.
        if value.utcoffset() == timedelta(0):
            return value.replace(tzinfo=None).isoformat() + "Z"
        return value.isoformat()
    return value


@attrs.frozen(slots=True)
class Account(_Dumpable):
    """The account that owns the token (``GET /account``), or a creator of a release."""

    type: str | None = None
    username: str | None = None
    name: str | None = None
    github_url: str | None = None
    avatar_url: str | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class Hardware(_Dumpable):
    """A hardware SKU that models and deployments can run on."""

    sku: str
    name: str | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class PredictionURLs(_Dumpable):
    """Links of a prediction or training. Follow them; never build them."""

    get: str | None = None
    cancel: str | None = None
    stream: str | None = None
    web: str | None = None
    raw: dict[str, Any] = _RAW


class _Run:
    """What predictions and trainings share: a status that may be terminal."""

    __slots__ = ()
    status: str
    completed_at: datetime | None

    @property
    def done(self) -> bool:
        """True once the status is terminal (or an unknown status carries ``completed_at``)."""
        return self.status in TERMINAL_STATUSES or (
            self.completed_at is not None and self.status not in ("starting", "processing")
        )

    @property
    def succeeded(self) -> bool:
        """True when the status is ``succeeded``."""
        return self.status == "succeeded"


@attrs.frozen(slots=True)
class Prediction(_Run, _Dumpable):
    """A prediction: one run of a model version on an input."""

    id: str
    status: str
    model: str | None = None
    version: str | None = None
    input: dict[str, Any] | None = None
    output: Any = None
    logs: str | None = None
    error: Any = None
    source: str | None = None
    data_removed: bool | None = None
    metrics: dict[str, Any] | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    deadline: datetime | None = None
    deployment: str | None = None
    urls: PredictionURLs | None = None
    webhook: str | None = None
    webhook_events_filter: list[str] | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class Training(_Run, _Dumpable):
    """A training: fine-tuning a version into a new version of a destination model.

    On success ``output`` is ``{"version": ..., "weights": ...}``.
    """

    id: str
    status: str
    model: str | None = None
    version: str | None = None
    destination: str | None = None
    input: dict[str, Any] | None = None
    output: Any = None
    logs: str | None = None
    error: Any = None
    source: str | None = None
    metrics: dict[str, Any] | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    urls: PredictionURLs | None = None
    webhook: str | None = None
    webhook_events_filter: list[str] | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class Version(_Dumpable):
    """A model version. Its inputs are at ``openapi_schema["components"]["schemas"]["Input"]``."""

    id: str
    created_at: datetime | None = None
    cog_version: str | None = None
    openapi_schema: dict[str, Any] | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class Model(_Dumpable):
    """A model: ``owner/name`` plus its metadata and latest version."""

    owner: str
    name: str
    url: str | None = None
    description: str | None = None
    visibility: str | None = None
    github_url: str | None = None
    paper_url: str | None = None
    license_url: str | None = None
    weights_url: str | None = None
    run_count: int | None = None
    cover_image_url: str | None = None
    default_example: Prediction | None = None
    latest_version: Version | None = None
    is_official: bool | None = None
    created_at: datetime | None = None
    raw: dict[str, Any] = _RAW

    @property
    def ref(self) -> str:
        """``"owner/name"``."""
        return f"{self.owner}/{self.name}"


@attrs.frozen(slots=True)
class Collection(_Dumpable):
    """A curated collection of models. ``models`` is ``None`` in list results."""

    slug: str
    name: str | None = None
    description: str | None = None
    full_description: str | None = None
    models: list[Model] | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class DeploymentConfiguration(_Dumpable):
    """Hardware and scaling of a deployment release."""

    hardware: str | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class DeploymentRelease(_Dumpable):
    """One numbered configuration of a deployment; any change makes a new one."""

    number: int | None = None
    model: str | None = None
    version: str | None = None
    created_at: datetime | None = None
    created_by: Account | None = None
    configuration: DeploymentConfiguration | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class Deployment(_Dumpable):
    """A deployment: a fixed model version on dedicated, autoscaled hardware."""

    owner: str
    name: str
    current_release: DeploymentRelease | None = None
    raw: dict[str, Any] = _RAW

    @property
    def ref(self) -> str:
        """``"owner/name"``."""
        return f"{self.owner}/{self.name}"


@attrs.frozen(slots=True)
class File(_Dumpable):
    """A file uploaded through the Files API. Pass ``urls["get"]`` as a model input."""

    id: str
    name: str | None = None
    content_type: str | None = None
    size: int | None = None
    etag: str | None = None
    checksums: dict[str, str] | None = None
    metadata: Any = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    urls: dict[str, str] | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class WebhookSecret(_Dumpable):
    """The account's webhook signing secret. Its ``repr`` hides the key."""

    key: str = attrs.field(repr=False)
    raw: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False, kw_only=True)


@attrs.frozen(slots=True)
class SearchModelMetadata(_Dumpable):
    """Why a model matched a search."""

    generated_description: str | None = None
    tags: list[str] | None = None
    score: float | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class SearchModel(_Dumpable):
    """A model found by ``GET /search``."""

    model: Model
    metadata: SearchModelMetadata | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class SearchCollection(_Dumpable):
    """A collection found by ``GET /search``; ``models`` are ``"owner/name"`` strings."""

    slug: str | None = None
    name: str | None = None
    description: str | None = None
    models: list[str] | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class SearchPage(_Dumpable):
    """A documentation page found by ``GET /search``."""

    name: str | None = None
    href: str | None = None
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class SearchResult(_Dumpable):
    """The answer of ``GET /search``."""

    query: str | None = None
    models: list[SearchModel] = attrs.field(factory=list)
    collections: list[SearchCollection] = attrs.field(factory=list)
    pages: list[SearchPage] = attrs.field(factory=list)
    raw: dict[str, Any] = _RAW


@attrs.frozen(slots=True)
class Page(_Dumpable, Generic[T]):
    """One page of a list endpoint.

    ``next`` is the absolute URL of the following page (``None`` on the last one); pass it
    back as ``cursor=`` to resume a walk later.
    """

    results: list[T]
    next: str | None = None
    previous: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)
