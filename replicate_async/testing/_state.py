"""The fake's in-memory store: dicts for lookups, sorted indexes for pages, seed data.

Synthetic items (``add_models`` / ``add_predictions``) are stored as plain ints in the
indexes and materialised only when a page or lookup needs them, so 200,000 of them
cost a few megabytes and a fraction of a second.
"""

from __future__ import annotations

import itertools
import json
import re
from bisect import bisect_right
from collections.abc import Callable
from importlib import resources
from typing import Any, Literal

from ._ids import IdFactory
from ._pagination import SortedIndex, make_key
from ._records import Collection, Deployment, FakePrediction, FileObject, Model, Version
from ._util import NS, parse_ts

__all__ = ["Store", "load_seed"]

JSON = dict[str, Any]

# Synthetic items are dated before everything else: 2020-09-13T12:26:40Z minus i seconds.
SYN_BASE_NS = 1_600_000_000 * NS
SYN_OWNER = "synthetic"
_SYN_MODEL_RE = re.compile(r"^model-(\d{6,})$")
_SYN_PRED_RE = re.compile(r"^synth(\d{21})$")
_SYN_VERSION_PREFIX = "fa4e"


_MODEL_FIELDS = [
    "owner",
    "name",
    "kind",
    "description",
    "visibility",
    "github_url",
    "paper_url",
    "license_url",
    "cover_image_url",
    "readme",
    "run_count",
    "is_official",
    "prediction_version",
]
_DEPLOYMENT_FIELDS = [
    "owner",
    "name",
    "model",
    "version",
    "hardware",
    "min_instances",
    "max_instances",
    "number",
]


def _pick(raw: JSON, names: list[str]) -> JSON:
    """The seed record's values for ``names`` (each one required)."""
    return {name: raw[name] for name in names}


def load_seed() -> JSON:
    """The packaged seed data (``seed.json``)."""
    text = resources.files(__package__).joinpath("seed.json").read_text(encoding="utf-8")
    data: JSON = json.loads(text)
    return data


class Store:
    """All server-side state. Every lookup is a dict hit; every page is a slice."""

    def __init__(self, now_ns: Callable[[], int], ids: IdFactory | None = None) -> None:
        self.now_ns = now_ns
        self.ids = ids if ids is not None else IdFactory()
        self._seq = itertools.count(1)
        self.account: JSON = {"type": "user", "username": "alice"}
        self.hardware: list[JSON] = []
        self.search_pages: list[JSON] = []
        self.models: dict[str, Model] = {}
        self.versions: dict[str, Version] = {}
        self.models_by_created: SortedIndex[Model | int] = SortedIndex()
        self.models_by_latest: SortedIndex[Model | int] = SortedIndex()
        self.predictions: dict[str, FakePrediction] = {}
        self.predictions_index: SortedIndex[FakePrediction | int] = SortedIndex()
        self.web_predictions_index: SortedIndex[FakePrediction | int] = SortedIndex()
        self.trainings: dict[str, FakePrediction] = {}
        self.trainings_index: SortedIndex[FakePrediction] = SortedIndex()
        self.deployments: dict[str, Deployment] = {}
        self.deployments_index: SortedIndex[Deployment] = SortedIndex()
        self.files: dict[str, FileObject] = {}
        self.files_index: SortedIndex[FileObject] = SortedIndex()
        self.collections: dict[str, Collection] = {}
        self.collections_index: SortedIndex[Collection] = SortedIndex()
        self.synthetic_models = 0
        self.synthetic_predictions = 0
        # (first synthetic index, source) per add_predictions batch.
        self._syn_batches: list[tuple[int, Literal["api", "web"]]] = []
        self._echo_version: Version | None = None

    def next_seq(self) -> int:
        """A new, unique sequence number (tie-breaker for index keys)."""
        return next(self._seq)

    # ----------------------------------------------------------------- models & versions

    def add_model(self, model: Model) -> None:
        """Store a model (public ones are listed by ``GET /models``)."""
        self.models[model.full_name] = model
        model.created_key = make_key(model.created_ns, self.next_seq())
        latest = model.latest_version
        model.latest_key = latest.key if latest is not None else model.created_key
        if model.visibility == "public":
            self.models_by_created.add(model.created_key, model)
            self.models_by_latest.add(model.latest_key, model)

    def remove_model(self, model: Model) -> None:
        """Forget a model (and its index entries)."""
        self.models.pop(model.full_name, None)
        self.models_by_created.remove(model.created_key)
        self.models_by_latest.remove(model.latest_key)

    def add_version(self, model: Model, version: Version) -> None:
        """Add a version to a model, re-sorting the model by latest version."""
        version.key = make_key(version.created_ns, self.next_seq())
        model.versions.add(version.key, version)
        self.versions[version.id] = version
        if model.latest_version is version:
            if model.visibility == "public" and model.full_name in self.models:
                self.models_by_latest.remove(model.latest_key)
                self.models_by_latest.add(version.key, model)
            model.latest_key = version.key

    def remove_version(self, model: Model, version: Version) -> None:
        """Delete a version from a model."""
        model.versions.remove(version.key)
        self.versions.pop(version.id, None)

    def get_model(self, full_name: str) -> Model | None:
        """Look a model up by ``owner/name`` (synthetic ones included)."""
        model = self.models.get(full_name)
        if model is not None:
            return model
        owner, _, name = full_name.partition("/")
        match = _SYN_MODEL_RE.match(name) if owner == SYN_OWNER else None
        if match is not None and int(match.group(1)) < self.synthetic_models:
            return self.synthetic_model(int(match.group(1)))
        return None

    def get_version(self, version_id: str) -> Version | None:
        """Look a version up by id (synthetic ones included)."""
        version = self.versions.get(version_id)
        if version is not None:
            return version
        if version_id.startswith(_SYN_VERSION_PREFIX) and len(version_id) == 64:
            try:
                index = int(version_id[4:], 16)
            except ValueError:
                return None
            if index < self.synthetic_models:
                return self._synthetic_version(index)
        return None

    def resolve_model(self, item: Model | int) -> Model:
        """Turn an index entry into a Model."""
        if isinstance(item, Model):
            return item
        return self.models.get(f"{SYN_OWNER}/model-{item:06d}") or self.synthetic_model(item)

    def add_synthetic_models(self, count: int) -> None:
        """Append ``count`` public synthetic models (``synthetic/model-NNNNNN``)."""
        first = self.synthetic_models
        pairs = [(make_key(SYN_BASE_NS - i * NS, 0), i) for i in range(first, first + count)]
        self.models_by_created.extend_sorted(pairs)
        self.models_by_latest.extend_sorted(pairs)
        self.synthetic_models += count

    def _synthetic_version(self, index: int) -> Version:
        template = self._echo_template()
        created = SYN_BASE_NS - index * NS
        return Version(
            id=f"{_SYN_VERSION_PREFIX}{index:060x}",
            model=f"{SYN_OWNER}/model-{index:06d}",
            created_ns=created,
            cog_version=template.cog_version,
            openapi_schema=template.openapi_schema,
            key=make_key(created, 0),
        )

    def synthetic_model(self, index: int) -> Model:
        """Materialise synthetic model number ``index``."""
        version = self._synthetic_version(index)
        model = Model(
            owner=SYN_OWNER,
            name=f"model-{index:06d}",
            kind="echo",
            created_ns=version.created_ns,
            description=f"Synthetic model number {index}",
            run_count=index % 1000,
            tags=["synthetic"],
        )
        model.versions.add(version.key, version)
        model.created_key = model.latest_key = version.key
        return model

    def _echo_template(self) -> Version:
        if self._echo_version is None:
            model = self.models.get("fake/echo")
            latest = model.latest_version if model is not None else None
            self._echo_version = latest or Version("0" * 64, "fake/echo", 0, "0.9.4", None)
        return self._echo_version

    # ------------------------------------------------------------------- predictions

    def add_prediction(self, prediction: FakePrediction) -> None:
        """Store a new prediction (listed newest first)."""
        prediction.key = make_key(prediction.created_ns, self.next_seq())
        self.predictions[prediction.id] = prediction
        self.predictions_index.add(prediction.key, prediction)
        if prediction.source == "web":
            self.web_predictions_index.add(prediction.key, prediction)

    def get_prediction(self, prediction_id: str) -> FakePrediction | None:
        """Look a prediction up by id (synthetic ones included)."""
        prediction = self.predictions.get(prediction_id)
        if prediction is not None:
            return prediction
        match = _SYN_PRED_RE.match(prediction_id)
        if match is not None and int(match.group(1)) < self.synthetic_predictions:
            return self.synthetic_prediction(int(match.group(1)))
        return None

    def resolve_prediction(self, item: FakePrediction | int) -> FakePrediction:
        """Turn an index entry into a Prediction."""
        return item if isinstance(item, FakePrediction) else self.synthetic_prediction(item)

    def add_synthetic_predictions(self, count: int, source: Literal["api", "web"]) -> None:
        """Append ``count`` succeeded synthetic predictions of ``fake/echo``."""
        first = self.synthetic_predictions
        self._syn_batches.append((first, source))
        pairs = [(make_key(SYN_BASE_NS - i * NS, 0), i) for i in range(first, first + count)]
        self.predictions_index.extend_sorted(pairs)
        if source == "web":
            self.web_predictions_index.extend_sorted(pairs)
        self.synthetic_predictions += count

    def synthetic_prediction(self, index: int) -> FakePrediction:
        """Materialise synthetic prediction number ``index``."""
        pos = bisect_right(self._syn_batches, (index, "zzz")) - 1
        source = self._syn_batches[pos][1] if pos >= 0 else "api"
        created = SYN_BASE_NS - index * NS
        version = self._echo_template()
        text = f"synthetic {index}"
        return FakePrediction(
            id=f"synth{index:021d}",
            model="fake/echo",
            version=version.id,
            version_id=version.id,
            input={"text": text},
            created_ns=created,
            key=make_key(created, 0),
            source=source,
            status="succeeded",
            output={"text": text},
            logs="Running echo model\n",
            started_ns=created + 1_234_567,
            completed_ns=created + 3_456_789,
            metrics={"predict_time": 0.002222222, "total_time": 0.003456789},
        )

    # -------------------------------------------------------------- everything else

    def _add(self, table: dict[str, Any], index: SortedIndex[Any], name: str, item: Any) -> None:
        table[name] = item
        index.add(item.key, item)

    def add_training(self, training: FakePrediction) -> None:
        """Store a new training (listed newest first)."""
        training.key = make_key(training.created_ns, self.next_seq())
        self._add(self.trainings, self.trainings_index, training.id, training)

    def add_deployment(self, deployment: Deployment) -> None:
        """Store a new deployment (listed newest first)."""
        deployment.key = make_key(deployment.release_ns, self.next_seq())
        self._add(self.deployments, self.deployments_index, deployment.full_name, deployment)

    def remove_deployment(self, deployment: Deployment) -> None:
        """Delete a deployment."""
        self.deployments.pop(deployment.full_name, None)
        self.deployments_index.remove(deployment.key)

    def add_file(self, file: FileObject) -> None:
        """Store an uploaded file (listed newest first)."""
        file.key = make_key(file.created_ns, self.next_seq())
        self._add(self.files, self.files_index, file.id, file)

    def remove_file(self, file: FileObject) -> None:
        """Delete an uploaded file (its content is freed with it)."""
        self.files.pop(file.id, None)
        self.files_index.remove(file.key)

    def add_collection(self, collection: Collection) -> None:
        """Store a collection (listed in seed order)."""
        collection.key = self.next_seq()
        self.collections[collection.slug] = collection
        self.collections_index.add(collection.key, collection)

    # ------------------------------------------------------------------------ seeding

    def load(self, data: JSON) -> None:
        """Populate the store from seed data (see ``seed.json``)."""
        self.account = dict(data["account"])
        self.hardware = list(data["hardware"])
        self.search_pages = list(data["search_pages"])
        for raw in data["models"]:
            self._load_model(raw)
        for raw in data["collections"]:
            self.add_collection(
                Collection(
                    raw["name"],
                    raw["slug"],
                    raw["description"],
                    raw["full_description"],
                    list(raw["models"]),
                )
            )
        for raw in data["deployments"]:
            fields = _pick(raw, _DEPLOYMENT_FIELDS)
            release_ns = parse_ts(raw["created_at"])
            self.add_deployment(
                Deployment(**fields, release_ns=release_ns, created_by=self.account)
            )
        for raw in data["predictions"]:
            self.add_prediction(prediction_from_json(raw, "echo"))
        for raw in data["trainings"]:
            training = prediction_from_json(raw, "echo")
            training.is_training = True
            training.destination = raw["output"]["version"].partition(":")[0]
            self.add_training(training)

    def _load_model(self, raw: JSON) -> None:
        fields = _pick(raw, _MODEL_FIELDS)
        model = Model(**fields, created_ns=parse_ts(raw["created_at"]), tags=list(raw["tags"]))
        for rv in raw["versions"]:
            version = Version(
                rv["id"],
                model.full_name,
                parse_ts(rv["created_at"]),
                rv["cog_version"],
                rv["openapi_schema"],
            )
            self.add_version(model, version)
        if raw["default_example"] is not None:
            model.default_example = prediction_from_json(raw["default_example"], model.kind)
        self.add_model(model)


def prediction_from_json(raw: JSON, kind: str) -> FakePrediction:
    """Build a stored (finished) prediction from a recorded API body."""

    def ts(name: str) -> int | None:
        value = raw.get(name)
        return parse_ts(value) if isinstance(value, str) else None

    created = ts("created_at")
    return FakePrediction(
        id=raw["id"],
        model=raw["model"],
        version=raw["version"],
        version_id=raw["version"],
        input=raw["input"],
        created_ns=created if created is not None else 0,
        kind=kind,
        source=raw.get("source", "api"),
        status=raw["status"],
        output=raw.get("output"),
        logs=raw.get("logs") or "",
        error=raw.get("error") or None,
        started_ns=ts("started_at"),
        completed_ns=ts("completed_at"),
        metrics=dict(raw.get("metrics") or {}),
        data_removed=bool(raw.get("data_removed", False)),
    )
