"""The in-memory objects the fake stores, and their JSON renderings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

from ._behaviours import ModelBehaviour
from ._pagination import SortedIndex
from ._util import NS, format_ts

__all__ = [
    "TERMINAL",
    "Collection",
    "Deployment",
    "FileObject",
    "Model",
    "FakePrediction",
    "Version",
]

TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
"""Statuses a prediction or training never leaves."""

JSON = dict[str, Any]


@dataclass(slots=True, eq=False)
class Version:
    """A model version (immutable once created)."""

    id: str
    model: str
    created_ns: int
    cog_version: str | None
    openapi_schema: JSON | None
    key: int = 0

    def to_json(self) -> JSON:
        """The API's Version object."""
        return {
            "id": self.id,
            "created_at": format_ts(self.created_ns, 6),
            "cog_version": self.cog_version,
            "openapi_schema": self.openapi_schema,
        }


@dataclass(slots=True, eq=False)
class Model:
    """A model and its versions (newest last in ``versions``)."""

    owner: str
    name: str
    kind: str
    created_ns: int
    description: str | None = None
    visibility: str = "public"
    github_url: str | None = None
    paper_url: str | None = None
    license_url: str | None = None
    cover_image_url: str | None = None
    weights_url: str | None = None
    readme: str | None = None
    run_count: int = 0
    is_official: bool = False
    prediction_version: str | None = None
    tags: list[str] = field(default_factory=list)
    versions: SortedIndex[Version] = field(default_factory=SortedIndex)
    default_example: FakePrediction | None = None
    created_key: int = 0
    latest_key: int = 0

    @property
    def full_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    @property
    def latest_version(self) -> Version | None:
        """The newest version, or ``None``."""
        return self.versions.values[-1] if self.versions.values else None

    def to_json(self, origin: str) -> JSON:
        """The API's Model object."""
        latest = self.latest_version
        example = self.default_example
        return {
            "url": f"https://replicate.com/{self.owner}/{self.name}",
            "owner": self.owner,
            "name": self.name,
            "description": self.description,
            "visibility": self.visibility,
            "github_url": self.github_url,
            "paper_url": self.paper_url,
            "license_url": self.license_url,
            "weights_url": self.weights_url,
            "run_count": self.run_count,
            "cover_image_url": self.cover_image_url,
            "default_example": example.to_json(origin) if example is not None else None,
            "latest_version": latest.to_json() if latest is not None else None,
            "is_official": self.is_official,
            "created_at": format_ts(self.created_ns, 6),
        }


@dataclass(slots=True, eq=False)
class FakePrediction:
    """A prediction or (with ``is_training``) a training, including its live run state."""

    id: str
    model: str
    version: str
    input: JSON
    created_ns: int
    key: int = 0
    version_id: str | None = None
    kind: str = "echo"
    is_training: bool = False
    source: Literal["api", "web"] = "api"
    status: str = "starting"
    output: Any = None
    logs: str = ""
    error: str | None = None
    started_ns: int | None = None
    completed_ns: int | None = None
    deadline_ns: int | None = None
    metrics: JSON = field(default_factory=dict)
    data_removed: bool = False
    deployment: str | None = None
    webhook: str | None = None
    webhook_events_filter: list[str] | None = None
    stream_requested: bool = False
    stream_kind: str | None = None
    destination: str | None = None
    sync: bool = False
    behaviour: ModelBehaviour | None = None
    # SSE events: (id or None, event, data); ids map to their position for resuming.
    events: list[tuple[str | None, str, str]] = field(default_factory=list)
    event_positions: dict[str, int] = field(default_factory=dict)
    changed: asyncio.Event | None = None
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    release: asyncio.Event | None = None
    """Set while the run is held (see ``FakeReplicate.hold``); set the event to go on."""
    forced: tuple[str, Any, str | None] | None = None
    """A scripted ending ``(status, output, error)`` being applied."""

    @property
    def done(self) -> bool:
        """Whether the status is terminal."""
        return self.status in TERMINAL

    def notify(self) -> None:
        """Wake everyone waiting for this object to change."""
        if self.changed is not None:
            self.changed.set()
            self.changed = None

    def wait_changed(self) -> asyncio.Event:
        """An event set at the next change."""
        if self.changed is None:
            self.changed = asyncio.Event()
        return self.changed

    def to_json(self, origin: str) -> JSON:
        """The API's Prediction (or Training) object."""
        base = f"{origin}/v1"
        collection = "trainings" if self.is_training else "predictions"
        urls = {
            "web": f"https://replicate.com/p/{self.id}",
            "get": f"{base}/{collection}/{self.id}",
            "cancel": f"{base}/{collection}/{self.id}/cancel",
        }
        if self.stream_kind == "text":
            urls["stream"] = f"{base}/streams/{self.id}"
        elif self.stream_kind == "file":
            urls["stream"] = f"{base}/files/fstream-{self.id}"
        out: JSON = {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "input": self.input,
            "logs": self.logs,
            "output": self.output,
            "data_removed": self.data_removed,
            "error": self.error,
            "status": self.status,
            "source": self.source,
            "created_at": format_ts(self.created_ns),
            "urls": urls,
            "metrics": self.metrics,
        }
        if self.is_training:
            del out["data_removed"]
            if self.output is None:
                del out["output"]
        if self.started_ns is not None:
            out["started_at"] = format_ts(self.started_ns, 6)
        if self.completed_ns is not None:
            out["completed_at"] = format_ts(self.completed_ns)
        if self.deadline_ns is not None:
            out["deadline"] = format_ts(self.deadline_ns)
        if self.deployment is not None:
            out["deployment"] = self.deployment
        if self.webhook is not None:
            out["webhook"] = self.webhook
            out["webhook_events_filter"] = self.webhook_events_filter or ["output", "completed"]
        if self.stream_requested:
            out["stream"] = True
        return out


@dataclass(slots=True, eq=False)
class Deployment:
    """A deployment and its current release."""

    owner: str
    name: str
    model: str
    version: str
    hardware: str
    min_instances: int
    max_instances: int
    number: int
    release_ns: int
    created_by: JSON
    key: int = 0

    @property
    def full_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    def to_json(self) -> JSON:
        """The API's Deployment object."""
        return {
            "owner": self.owner,
            "name": self.name,
            "current_release": {
                "number": self.number,
                "model": self.model,
                "version": self.version,
                "created_at": format_ts(self.release_ns, 6),
                "created_by": self.created_by,
                "configuration": {
                    "hardware": self.hardware,
                    "min_instances": self.min_instances,
                    "max_instances": self.max_instances,
                },
            },
        }


@dataclass(slots=True, eq=False)
class FileObject:
    """An uploaded file (Files API)."""

    id: str
    name: str
    content_type: str
    content: bytes | memoryview
    """The bytes, often a view into the upload's own buffer (held once, freed on delete)."""
    sha256: str
    md5: str
    metadata: JSON
    created_ns: int
    key: int = 0

    def to_json(self, origin: str) -> JSON:
        """The API's File object."""
        return {
            "id": self.id,
            "name": self.name,
            "content_type": self.content_type,
            "size": len(self.content),
            "etag": self.md5,
            "checksums": {"sha256": self.sha256, "md5": self.md5},
            "metadata": self.metadata,
            "created_at": format_ts(self.created_ns, 3),
            "expires_at": format_ts(self.created_ns + 24 * 3600 * NS, 3),
            "urls": {"get": f"{origin}/v1/files/{self.id}"},
        }


@dataclass(slots=True, eq=False)
class Collection:
    """A curated collection of models."""

    name: str
    slug: str
    description: str
    full_description: str | None
    models: list[str]
    key: int = 0

    def summary(self) -> JSON:
        """The list-item shape."""
        return {"name": self.name, "slug": self.slug, "description": self.description}
