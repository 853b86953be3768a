"""Every recorded body structures into its model; timestamps, unknown fields and statuses."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from replicate_async import (
    TERMINAL_STATUSES,
    Account,
    Collection,
    Deployment,
    File,
    Hardware,
    Model,
    Page,
    Prediction,
    SearchResult,
    Status,
    Training,
    Version,
    WebhookSecret,
)
from replicate_async._converter import (
    StructureError,
    loads,
    parse_datetime,
    structure,
    structure_list,
)
from replicate_async.models import KNOWN_STATUSES
from replicate_async.pagination import _build_page
from tests.helpers import example, example_names

#: File-name prefix -> model class (longest prefix wins). Pages map to their item class.
PREFIXES: dict[str, type[Any]] = {
    "account-": Account,
    "collection-": Collection,
    "deployment-": Deployment,
    "file-": File,
    "model-": Model,
    "prediction-": Prediction,
    "search-": SearchResult,
    "training-": Training,
    "version-": Version,
    "webhooks-default-secret": WebhookSecret,
    "page-collections-": Collection,
    "page-deployments-": Deployment,
    "page-files-": File,
    "page-models-": Model,
    "page-predictions-": Prediction,
}
#: Examples that are not response bodies of a model (errors, SSE transcripts, test vectors).
NOT_MODELS = ("error-", "sse-stream-transcripts", "webhook-signature-test-vector")


def _class_for(name: str) -> type[Any] | None:
    if name == "hardware-list":
        return Hardware
    matches = [p for p in PREFIXES if name.startswith(p)]
    return PREFIXES[max(matches, key=len)] if matches else None


def _model_examples() -> list[str]:
    return [n for n in example_names() if not n.startswith(NOT_MODELS)]


def _datetimes(obj: Any) -> list[datetime]:
    """Every datetime reachable from a model object (through nested models and lists)."""
    found: list[datetime] = []
    if isinstance(obj, datetime):
        found.append(obj)
    elif isinstance(obj, list | tuple):
        for item in obj:
            found.extend(_datetimes(item))
    elif attrs.has(type(obj)):
        for field in attrs.fields(type(obj)):
            if field.name != "raw":
                found.extend(_datetimes(getattr(obj, field.name)))
    return found


def _build(name: str) -> list[Any]:
    cls = _class_for(name)
    assert cls is not None, f"no model class mapped for example {name!r}"
    data = example(name)
    if name == "hardware-list":
        return structure_list(data, Hardware)
    if name.startswith("page-"):
        page = _build_page(data, cls)
        assert isinstance(page, Page)
        assert len(page.results) == len(data["results"]) > 0
        return list(page.results)
    return [structure(data, cls)]


def test_every_example_is_classified() -> None:
    """Each example file is either mapped to a model class or explicitly not a model body."""
    names = example_names()
    assert len(names) >= 40
    unmapped = [n for n in _model_examples() if _class_for(n) is None]
    assert unmapped == []


@pytest.mark.parametrize("name", _model_examples())
def test_example_structures(name: str) -> None:
    """The recorded body builds the right class, keeps raw, and has aware timestamps."""
    cls = _class_for(name)
    objects = _build(name)
    assert objects
    data = example(name)
    raws = data["results"] if name.startswith("page-") else data
    if not isinstance(raws, list):
        raws = [raws]
    for obj, raw in zip(objects, raws, strict=True):
        assert isinstance(obj, cls)
        assert obj.raw == raw
        for moment in _datetimes(obj):
            assert moment.tzinfo is not None
            assert moment.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "name",
    [n for n in _model_examples() if n.startswith(("prediction-", "training-"))],
)
def test_run_examples_keep_identity_and_status(name: str) -> None:
    """Predictions and trainings keep id, status and input exactly as received."""
    data = example(name)
    (run,) = _build(name)
    assert run.id == data["id"]
    assert run.status == data["status"]
    assert run.input == data.get("input")
    assert run.done == (data["status"] in TERMINAL_STATUSES)


def test_webhook_official_model_example() -> None:
    """The 2025 official-model webhook body: hidden version, stream URL, open metrics."""
    prediction = structure(example("prediction-webhook-succeeded-official-model"), Prediction)
    assert prediction.version == "hidden"
    assert prediction.urls is not None
    assert prediction.urls.stream is not None
    assert prediction.urls.stream.startswith("https://stream.replicate.com/v1/files/")
    assert prediction.urls.web == "https://replicate.com/p/vcscvthbaxrm80cq9xqtcbaw4m"
    assert prediction.metrics == {"image_count": 1, "predict_time": 5.247161016}
    assert prediction.completed_at == datetime(2025, 6, 8, 12, 6, 20, 383588, tzinfo=UTC)
    assert (
        prediction.webhook_events_filter
        == example("prediction-webhook-succeeded-official-model")["webhook_events_filter"]
    )


def test_data_url_output_passes_through() -> None:
    """A sync-mode `data:` URL output is kept verbatim."""
    prediction = structure(
        example("prediction-create-prefer-wait-data-url-output-TRUNCATED"), Prediction
    )
    assert isinstance(prediction.output, list)
    assert prediction.output[0].startswith("data:image/png;base64,")


def test_search_example_nested_types() -> None:
    """SearchResult builds nested models, metadata, collections and doc pages."""
    result = structure(example("search-get-spec-example"), SearchResult)
    assert isinstance(result.models[0].model, Model)
    assert result.models[0].metadata is not None
    assert isinstance(result.models[0].metadata.score, float)
    assert result.collections[0].name == "Image Editing"
    assert result.pages[0].name == "Getting started with image editing"


def test_collection_list_items_have_no_models() -> None:
    """Collections from the list have `models` None; from get, a list of Model."""
    page = _build_page(example("page-collections-list"), Collection)
    assert all(c.models is None for c in page.results)
    full = structure(example("collection-get-TRUNCATED"), Collection)
    assert full.models is not None
    assert all(isinstance(m, Model) for m in full.models)


# -- timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-09-08T16:19:34.765994657Z", datetime(2023, 9, 8, 16, 19, 34, 765994, tzinfo=UTC)),
        ("2023-08-16T18:57:08.36078514Z", datetime(2023, 8, 16, 18, 57, 8, 360785, tzinfo=UTC)),
        ("2023-08-16T18:57:08.3607851Z", datetime(2023, 8, 16, 18, 57, 8, 360785, tzinfo=UTC)),
        ("2023-10-12T17:10:12.909279Z", datetime(2023, 10, 12, 17, 10, 12, 909279, tzinfo=UTC)),
        ("2024-10-04T18:07:40.328Z", datetime(2024, 10, 4, 18, 7, 40, 328000, tzinfo=UTC)),
        ("2023-08-16T18:57:12.17042Z", datetime(2023, 8, 16, 18, 57, 12, 170420, tzinfo=UTC)),
        ("2024-04-22T11:15:01.04Z", datetime(2024, 4, 22, 11, 15, 1, 40000, tzinfo=UTC)),
        ("2024-04-22T11:15:01.5Z", datetime(2024, 4, 22, 11, 15, 1, 500000, tzinfo=UTC)),
        ("2024-04-18T17:21:55Z", datetime(2024, 4, 18, 17, 21, 55, tzinfo=UTC)),
        ("2024-04-18t17:21:55z", datetime(2024, 4, 18, 17, 21, 55, tzinfo=UTC)),
        ("2024-04-18 17:21:55Z", datetime(2024, 4, 18, 17, 21, 55, tzinfo=UTC)),
        ("2024-04-18T17:21:55", datetime(2024, 4, 18, 17, 21, 55, tzinfo=UTC)),
    ],
)
def test_parse_datetime_fraction_digits(text: str, expected: datetime) -> None:
    """0-9 fractional digits parse (truncated to microseconds) into aware UTC datetimes."""
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.microsecond == expected.microsecond
    assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("2024-01-01T10:00:00+05:30", timedelta(hours=5, minutes=30)),
        ("2024-01-01T10:00:00.123456789-08:00", timedelta(hours=-8)),
        ("2024-01-01T10:00:00+0200", timedelta(hours=2)),
        ("2024-01-01T10:00:00+00:00", timedelta(0)),
    ],
)
def test_parse_datetime_offsets(text: str, offset: timedelta) -> None:
    """Numeric offsets are kept, and the instant is right."""
    parsed = parse_datetime(text)
    assert parsed.utcoffset() == offset
    assert parsed == datetime(2024, 1, 1, 10, 0, tzinfo=timezone(offset)).replace(
        microsecond=parsed.microsecond
    )


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2024-13-01T00:00:00Z",
        "2024-02-30T00:00:00Z",
        "2024-01-01",
        "",
        "2024-01-01T00:00:00.1234567890Z",
    ],
)
def test_parse_datetime_rejects_garbage(text: str) -> None:
    """Non-timestamps and impossible dates raise StructureError (a ValueError)."""
    with pytest.raises(StructureError):
        parse_datetime(text)
    assert issubclass(StructureError, ValueError)


def test_nanosecond_timestamp_inside_a_prediction() -> None:
    """A prediction with a 9-digit created_at parses to microsecond precision."""
    body = {"id": "p", "status": "starting", "created_at": "2023-09-08T16:19:34.765994657Z"}
    prediction = structure(body, Prediction)
    assert prediction.created_at is not None
    assert prediction.created_at.microsecond == 765994
    assert prediction.created_at.tzinfo == UTC


# -- unknown fields, statuses, shapes ---------------------------------------------------


def test_unknown_fields_kept_in_raw() -> None:
    """Fields the SDK does not model are kept in `.raw`, nested ones too."""
    body = {
        "id": "p1",
        "status": "succeeded",
        "brand_new": {"x": 1},
        "urls": {"get": "https://api.replicate.com/v1/predictions/p1", "shiny": "u"},
    }
    prediction = structure(body, Prediction)
    assert prediction.raw["brand_new"] == {"x": 1}
    assert prediction.urls is not None
    assert prediction.urls.raw["shiny"] == "u"
    assert not hasattr(prediction, "brand_new")


@pytest.mark.parametrize("status", ["interrupted", "aborted", "queued-for-mars"])
def test_unknown_and_new_statuses_pass_through(status: str) -> None:
    """Statuses are opaque strings: new ones are not rejected."""
    prediction = structure({"id": "p", "status": status}, Prediction)
    assert prediction.status == status
    training = structure({"id": "t", "status": status}, Training)
    assert training.status == status


def test_done_property() -> None:
    """`done` covers all four terminal statuses and unknown statuses with completed_at."""
    assert {"succeeded", "failed", "canceled", "aborted"} == TERMINAL_STATUSES
    assert "aborted" in TERMINAL_STATUSES
    assert TERMINAL_STATUSES < KNOWN_STATUSES == set(typing.get_args(Status))
    for status in TERMINAL_STATUSES:
        assert structure({"id": "p", "status": status}, Prediction).done
    for status in ("starting", "processing", "interrupted"):
        assert not structure({"id": "p", "status": status}, Prediction).done
    finished = {"id": "p", "status": "interrupted", "completed_at": "2024-01-01T00:00:00Z"}
    assert structure(finished, Prediction).done
    assert not structure({"id": "p", "status": "failed"}, Prediction).succeeded


def test_only_identity_is_required() -> None:
    """A prediction with just id and status builds; every other field defaults to None."""
    prediction = structure({"id": "p", "status": "starting"}, Prediction)
    assert prediction.output is None
    assert prediction.urls is None
    assert prediction.logs is None
    assert prediction.metrics is None
    assert prediction.created_at is None


@pytest.mark.parametrize(
    ("body", "cls"),
    [
        ({"status": "starting"}, Prediction),
        ({"id": "p"}, Prediction),
        ([{"id": "p", "status": "starting"}], Prediction),
        ({"id": "p", "status": 3}, Prediction),
        ({"id": "p", "status": "x", "created_at": 1700000000}, Prediction),
        ({"id": "p", "status": "x", "input": ["not", "a", "dict"]}, Prediction),
        ({"id": "p", "status": "x", "data_removed": "no"}, Prediction),
        ({"owner": "a"}, Model),
        ({"owner": "a", "name": "b", "run_count": "many"}, Model),
        ({"owner": "a", "name": "b", "run_count": True}, Model),
        ({"owner": "a", "name": "b", "latest_version": "v1"}, Model),
        ("a string", Account),
        ({"name": "CPU"}, Hardware),
        ({}, WebhookSecret),
        ({"query": "x", "models": [{"metadata": {}}]}, SearchResult),
    ],
)
def test_wrong_shapes_raise_structure_error(body: Any, cls: type[Any]) -> None:
    """Missing identity fields and wrongly typed values raise StructureError."""
    with pytest.raises(StructureError):
        structure(body, cls)


def test_structure_list_rejects_non_lists() -> None:
    """structure_list needs a JSON array of objects."""
    with pytest.raises(StructureError):
        structure_list({"sku": "cpu"}, Hardware)
    with pytest.raises(StructureError):
        structure_list([{"sku": "cpu"}, "gpu"], Hardware)


def test_build_page_shapes() -> None:
    """A page needs an object with a results array; the string 'null' next means no next."""
    page = _build_page({"next": "null", "previous": "null", "results": []}, Model)
    assert page.next is None
    assert page.previous is None
    with pytest.raises(StructureError):
        _build_page([], Model)
    with pytest.raises(StructureError):
        _build_page({"next": None}, Model)


def test_integral_float_accepted_as_int() -> None:
    """A run_count sent as 5.0 is accepted as the int 5; 5.5 is rejected."""
    assert structure({"owner": "a", "name": "b", "run_count": 5.0}, Model).run_count == 5
    with pytest.raises(StructureError):
        structure({"owner": "a", "name": "b", "run_count": 5.5}, Model)


def test_duplicate_json_keys_last_wins() -> None:
    """A body with a duplicated key (seen in R) decodes, the last value winning."""
    data = loads(b'{"id": "p", "status": "starting", "model": "a/b", "model": "c/d"}')
    assert structure(data, Prediction).model == "c/d"


# -- model conveniences ---------------------------------------------------------------


def test_webhook_secret_repr_hides_key() -> None:
    """WebhookSecret's repr never shows the key, yet the key is available."""
    secret = structure({"key": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}, WebhookSecret)
    assert secret.key == "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    assert "C2FVsBQIhrscChlQIMV" not in repr(secret)
    assert "whsec" not in repr(secret)
    assert "whsec" not in str(secret)


def test_refs_and_page_protocols() -> None:
    """Model.ref / Deployment.ref are 'owner/name'; a Page iterates and has a length."""
    assert structure({"owner": "a", "name": "b"}, Model).ref == "a/b"
    assert structure(example("deployment-get"), Deployment).ref == "acme/my-app-image-generator"
    page = _build_page(example("page-predictions-list-spec-example"), Prediction)
    assert len(page) == 1
    assert [p.id for p in page] == ["gm3qorzdhgbfurvjtvhg6dckhu"]


def test_models_are_frozen_and_compare_without_raw() -> None:
    """Models are immutable; equality ignores `raw`."""
    first = structure({"id": "p", "status": "x", "extra": 1}, Prediction)
    second = structure({"id": "p", "status": "x", "extra": 2}, Prediction)
    assert first == second
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        first.status = "y"  # type: ignore[misc]


@pytest.mark.parametrize("end", [None, "null", ""])
def test_page_end_markers_normalised(end: str | None) -> None:
    """A page's next/previous of null, "null" or "" is exposed as None."""
    page = _build_page({"next": end, "previous": end, "results": []}, Model)
    assert page.next is None
    assert page.previous is None


# -- the generated builders -------------------------------------------------------------------


def _reference(cls: type[Any], data: dict[str, Any]) -> Any:
    """The obvious, slow construction: each present field converted, then ``cls(**fields)``."""
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: _reference_value(hints[f.name], data[f.name])
        for f in attrs.fields(cls)
        if f.name != "raw" and f.name in data
    }
    return cls(**fields, raw=data)


def _reference_value(tp: Any, value: Any) -> Any:
    args = typing.get_args(tp)
    if type(None) in args:
        if value is None:
            return None
        (tp,) = (arg for arg in args if arg is not type(None))
    if tp is datetime:
        return parse_datetime(value)
    if attrs.has(tp):
        return _reference(tp, value)
    if typing.get_origin(tp) is list and attrs.has(typing.get_args(tp)[0]):
        return [_reference(typing.get_args(tp)[0], item) for item in value]
    return float(value) if tp is float else value


def _same(built: Any, expected: Any) -> None:
    """Equal, of the same types all the way down, and ``raw`` the very dict received."""
    assert type(built) is type(expected)
    if attrs.has(type(built)):
        assert built.raw is expected.raw
        for field in attrs.fields(type(built)):
            if field.name != "raw":
                _same(getattr(built, field.name), getattr(expected, field.name))
    elif isinstance(built, list):
        assert len(built) == len(expected)
        for a, b in zip(built, expected, strict=True):
            _same(a, b)
    else:
        assert built == expected


@pytest.mark.parametrize("name", _model_examples())
def test_built_objects_match_the_plain_constructor(name: str) -> None:
    """Every recorded body builds exactly what the class's own constructor makes of it."""
    cls = _class_for(name)
    assert cls is not None
    data = example(name)
    if name == "hardware-list":
        for built, item in zip(structure_list(data, cls), data, strict=True):
            _same(built, _reference(cls, item))
    elif name.startswith("page-"):
        for built, item in zip(_build_page(data, cls), data["results"], strict=True):
            _same(built, _reference(cls, item))
    else:
        _same(structure(data, cls), _reference(cls, data))


def test_every_field_of_a_live_model_is_typed() -> None:
    """A live-shaped model: nested prediction and version, five timestamps, all typed."""
    data = example("model-get-sdxl")
    model = structure(data, Model)
    assert model.raw is data
    example_run = model.default_example
    assert isinstance(example_run, Prediction)
    assert example_run.raw is data["default_example"]
    assert example_run.urls is not None
    assert example_run.urls.get == data["default_example"]["urls"]["get"]
    assert example_run.metrics == {"predict_time": 4.981337, "total_time": 4.95241}
    assert model.latest_version is not None
    assert model.latest_version.openapi_schema == data["latest_version"]["openapi_schema"]
    moments = [
        model.created_at,
        example_run.created_at,
        example_run.started_at,
        example_run.completed_at,
        model.latest_version.created_at,
    ]
    assert all(isinstance(m, datetime) and m.tzinfo is not None for m in moments)
    assert example_run.completed_at == datetime(2023, 10, 12, 17, 10, 12, 909279, tzinfo=UTC)
    assert isinstance(model.run_count, int)


@pytest.mark.parametrize(
    ("body", "cls", "where"),
    [
        ({"status": "starting"}, Prediction, "Prediction.id: missing"),
        ({"id": "p", "status": 3}, Prediction, "Prediction.status: expected a string, got int"),
        (
            {"owner": "a", "name": "b", "default_example": {"id": "p", "status": "x", "urls": []}},
            Model,
            "Prediction.urls: expected an object, got list",
        ),
        (
            {"owner": "a", "name": "b", "latest_version": {"id": "v", "created_at": 17}},
            Model,
            "Version.created_at: expected a timestamp string, got int",
        ),
        ({"slug": "s", "models": {}}, Collection, "Collection.models: expected a list, got dict"),
        ({"query": "q", "models": None}, SearchResult, "SearchResult.models: expected a list"),
    ],
)
def test_shape_errors_name_the_field(body: Any, cls: type[Any], where: str) -> None:
    """A wrong value is reported with the class and field it was meant for."""
    with pytest.raises(StructureError) as caught:
        structure(body, cls)
    assert where in str(caught.value)


def test_defaults_are_fresh_per_object() -> None:
    """A factory default (SearchResult's lists) is a new list for every object."""
    first = structure({"query": "a"}, SearchResult)
    second = structure({"query": "b"}, SearchResult)
    assert first.models == []
    assert second.models == []
    assert first.models is not second.models
