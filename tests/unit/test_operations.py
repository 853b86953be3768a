"""Every one of the 37 API operations: the exact request sent, and the typed result."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from aioresponses import aioresponses

from replicate_async import (
    Account,
    AsyncReplicate,
    Collection,
    Deployment,
    File,
    Hardware,
    Model,
    Page,
    Prediction,
    SearchResult,
    Training,
    Version,
    WebhookSecret,
)
from tests.helpers import Watched, enforced, example

from ._helpers import API, assert_standard_headers, multipart_parts, request_count, sent

JSON = "application/json"
VERSION_ID = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
DEPLOY_VERSION = "da77bc59ee60423279fd632efb4795ab731d9e3ca9705ef3341091fb989b7eaf"


def _page(*results: object, next: str | None = None) -> dict[str, object]:
    return {"next": next, "previous": None, "results": list(results)}


# -- account, hardware, webhooks, search ---------------------------------------------


async def test_account_get(client: AsyncReplicate, mocked: aioresponses) -> None:
    """account.get: GET /account with auth, builds an Account."""
    mocked.get(f"{API}/account", payload=example("account-get"))
    account = await client.account.get()
    request = sent(mocked, "GET", f"{API}/account")
    assert request.path == "/v1/account"
    assert request.query == {}
    assert request.body is None
    assert_standard_headers(request)
    assert isinstance(account, Account)
    assert account.type == "organization"
    assert account.username == "acme"
    assert account.name == "Acme Corp, Inc."
    assert account.github_url == "https://github.com/acme"
    assert account.avatar_url is None


async def test_hardware_list(client: AsyncReplicate, mocked: aioresponses) -> None:
    """hardware.list: GET /hardware returns a bare array of Hardware, not a page."""
    mocked.get(f"{API}/hardware", body=(b'[{"sku":"cpu","name":"CPU"},{"sku":"gpu-t4"}]'))
    hardware = await client.hardware.list()
    request = sent(mocked, "GET", f"{API}/hardware")
    assert_standard_headers(request)
    assert request.body is None
    assert hardware == [Hardware(sku="cpu", name="CPU"), Hardware(sku="gpu-t4")]


async def test_hardware_list_recorded_example(client: AsyncReplicate, mocked: aioresponses) -> None:
    """hardware.list: the recorded array structures into four Hardware items."""
    body = example("hardware-list")
    mocked.get(f"{API}/hardware", body=json.dumps(body))
    hardware = await client.hardware.list()
    assert [h.sku for h in hardware] == ["cpu", "gpu-t4", "gpu-a40-small", "gpu-a40-large"]
    assert hardware[1].name == "Nvidia T4 GPU"
    assert all(isinstance(h, Hardware) for h in hardware)


async def test_webhooks_default_secret_get(client: AsyncReplicate, mocked: aioresponses) -> None:
    """webhooks.default.secret.get: GET /webhooks/default/secret builds a WebhookSecret."""
    mocked.get(f"{API}/webhooks/default/secret", payload=example("webhooks-default-secret"))
    secret = await client.webhooks.default.secret.get()
    request = sent(mocked, "GET", f"{API}/webhooks/default/secret")
    assert_standard_headers(request)
    assert isinstance(secret, WebhookSecret)
    assert secret.key == "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    assert "whsec_" not in repr(secret)


async def test_search(client: AsyncReplicate, mocked: aioresponses) -> None:
    """search: GET /search?query=&limit= without an Authorization header."""
    url = f"{API}/search?query=nano+banana&limit=5"
    mocked.get(url, payload=example("search-get-spec-example"))
    result = await client.search("nano banana", limit=5)
    request = sent(mocked, "GET", url)
    assert request.path == "/v1/search"
    assert request.query == {"query": "nano banana", "limit": "5"}
    assert_standard_headers(request, auth=False)
    assert isinstance(result, SearchResult)
    assert result.query == "nano banana"
    assert [m.model.ref for m in result.models] == ["google/nano-banana"]
    assert isinstance(result.models[0].model, Model)
    assert result.models[0].metadata is not None
    assert result.models[0].metadata.tags == ["text-to-image", "image-to-image", "image-editing"]
    assert result.models[0].metadata.score == pytest.approx(1.3847375700706976)
    assert result.collections[0].slug == "image-editing"
    assert result.collections[0].models == ["google/nano-banana", "stability-ai/stable-diffusion"]
    assert result.pages[0].href == "/docs/guides/image-editing"


async def test_search_without_limit(client: AsyncReplicate, mocked: aioresponses) -> None:
    """search: without limit only the query parameter is sent."""
    url = f"{API}/search?query=llama"
    mocked.get(url, payload={"query": "llama", "models": [], "collections": [], "pages": []})
    result = await client.search("llama")
    assert sent(mocked, "GET", url).query == {"query": "llama"}
    assert result.models == []
    assert result.pages == []


# -- collections ----------------------------------------------------------------------


async def test_collections_list(client: AsyncReplicate, mocked: aioresponses) -> None:
    """collections.list: GET /collections; awaiting gives the first Page of Collections."""
    mocked.get(f"{API}/collections", payload=example("page-collections-list"))
    page = await client.collections.list()
    request = sent(mocked, "GET", f"{API}/collections")
    assert_standard_headers(request)
    assert request.query == {}
    assert isinstance(page, Page)
    assert page.next is None
    assert page.previous is None
    assert all(isinstance(c, Collection) for c in page.results)
    assert page.results[0].slug == "vision-models"
    assert page.results[0].models is None
    assert len(page) == len(example("page-collections-list")["results"])


async def test_collections_get(client: AsyncReplicate, mocked: aioresponses) -> None:
    """collections.get: GET /collections/{slug} with its models."""
    mocked.get(f"{API}/collections/text-to-image", payload=example("collection-get-TRUNCATED"))
    collection = await client.collections.get("text-to-image")
    request = sent(mocked, "GET", f"{API}/collections/text-to-image")
    assert_standard_headers(request)
    assert isinstance(collection, Collection)
    assert collection.slug == "text-to-image"
    assert collection.name == "Text to image"
    assert collection.models is not None
    assert [m.ref for m in collection.models] == [
        "huiyegit/t2i_cl",
        "mehdidc/feed_forward_vqgan_clip",
    ]
    assert collection.models[0].run_count == 1180


# -- deployments ------------------------------------------------------------------------


async def test_deployments_list(client: AsyncReplicate, mocked: aioresponses) -> None:
    """deployments.list: GET /deployments gives Deployments and the next link as given."""
    mocked.get(f"{API}/deployments", payload=example("page-deployments-list"))
    page = await client.deployments.list()
    request = sent(mocked, "GET", f"{API}/deployments")
    assert_standard_headers(request)
    assert isinstance(page.results[0], Deployment)
    assert page.results[0].ref == "replicate/my-app-image-generator"
    assert page.next == example("page-deployments-list")["next"]


async def test_deployments_create(client: AsyncReplicate, mocked: aioresponses) -> None:
    """deployments.create: POST /deployments with all six JSON fields."""
    mocked.post(f"{API}/deployments", payload=example("deployment-get"))
    deployment = await client.deployments.create(
        name="my-app-image-generator",
        model="stability-ai/sdxl",
        version=DEPLOY_VERSION,
        hardware="gpu-t4",
        min_instances=1,
        max_instances=5,
    )
    request = sent(mocked, "POST", f"{API}/deployments")
    assert_standard_headers(request, content_type=JSON)
    assert request.json() == {
        "name": "my-app-image-generator",
        "model": "stability-ai/sdxl",
        "version": DEPLOY_VERSION,
        "hardware": "gpu-t4",
        "min_instances": 1,
        "max_instances": 5,
    }
    assert isinstance(deployment, Deployment)
    assert deployment.ref == "acme/my-app-image-generator"
    release = deployment.current_release
    assert release is not None
    assert release.number == 1
    assert release.created_by is not None
    assert release.created_by.username == "acme"
    assert release.configuration is not None
    assert release.configuration.hardware == "gpu-t4"
    assert (release.configuration.min_instances, release.configuration.max_instances) == (1, 5)
    assert release.created_at == datetime(2024, 2, 15, 16, 32, 57, 18467, tzinfo=UTC)


async def test_deployments_create_accepts_201(client: AsyncReplicate, mocked: aioresponses) -> None:
    """deployments.create: a 201 (as R's mocks use) is as good as the spec's 200."""
    mocked.post(f"{API}/deployments", status=201, payload=example("deployment-get"))
    deployment = await client.deployments.create(
        name="d",
        model="a/b",
        version=DEPLOY_VERSION,
        hardware="cpu",
        min_instances=0,
        max_instances=0,
    )
    assert deployment.name == "my-app-image-generator"


async def test_deployments_get(client: AsyncReplicate, mocked: aioresponses) -> None:
    """deployments.get: GET /deployments/{owner}/{name}."""
    url = f"{API}/deployments/acme/my-app-image-generator"
    mocked.get(url, payload=example("deployment-get"))
    deployment = await client.deployments.get("acme/my-app-image-generator")
    request = sent(mocked, "GET", url)
    assert_standard_headers(request)
    assert request.body is None
    assert deployment.owner == "acme"
    assert deployment.current_release is not None
    assert deployment.current_release.version == DEPLOY_VERSION


async def test_deployments_update(client: AsyncReplicate, mocked: aioresponses) -> None:
    """deployments.update: PATCH with only the fields given."""
    url = f"{API}/deployments/acme/my-app-image-generator"
    mocked.patch(url, payload=example("deployment-get"))
    deployment = await client.deployments.update(
        "acme/my-app-image-generator", min_instances=2, version=DEPLOY_VERSION
    )
    request = sent(mocked, "PATCH", url)
    assert_standard_headers(request, content_type=JSON)
    assert request.json() == {"min_instances": 2, "version": DEPLOY_VERSION}
    assert isinstance(deployment, Deployment)


async def test_deployments_update_all_fields(client: AsyncReplicate, mocked: aioresponses) -> None:
    """deployments.update: every updatable field goes into the body."""
    url = f"{API}/deployments/acme/app"
    mocked.patch(url, payload=example("deployment-get"))
    await client.deployments.update(
        "acme/app", version="v1", hardware="gpu-a40-large", min_instances=0, max_instances=20
    )
    assert sent(mocked, "PATCH", url).json() == {
        "version": "v1",
        "hardware": "gpu-a40-large",
        "min_instances": 0,
        "max_instances": 20,
    }


async def test_deployments_delete(client: AsyncReplicate, mocked: aioresponses) -> None:
    """deployments.delete: DELETE returns None on 204 without reading a body."""
    url = f"{API}/deployments/acme/my-app-image-generator"
    mocked.delete(url, status=204, body=b"")
    assert await client.deployments.delete("acme/my-app-image-generator") is None
    request = sent(mocked, "DELETE", url)
    assert_standard_headers(request)
    assert request.body is None


async def test_deployments_predictions_create(client: AsyncReplicate, mocked: aioresponses) -> None:
    """deployments.predictions.create: POST with input, webhook, Prefer and Cancel-After."""
    url = f"{API}/deployments/acme/my-app/predictions"
    mocked.post(url, status=201, payload=example("prediction-create-async-starting"))
    prediction = await client.deployments.predictions.create(
        "acme/my-app",
        input={"prompt": "a corgi"},
        webhook="https://example.com/hook?id=1",
        webhook_events_filter=["start", "completed"],
        wait=True,
        cancel_after=30,
    )
    request = sent(mocked, "POST", url)
    assert_standard_headers(
        request, content_type=JSON, extra={"Prefer": "wait", "Cancel-After": "30s"}
    )
    assert request.json() == {
        "input": {"prompt": "a corgi"},
        "webhook": "https://example.com/hook?id=1",
        "webhook_events_filter": ["start", "completed"],
    }
    assert isinstance(prediction, Prediction)
    assert prediction.id == "vgcm4plb7tgzlyznry5d5jkgvu"
    assert prediction.status == "starting"


async def test_deployments_predictions_create_minimal(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """deployments.predictions.create: only input, no Prefer/Cancel-After headers."""
    url = f"{API}/deployments/acme/my-app/predictions"
    mocked.post(url, status=202, payload=example("prediction-create-async-starting"))
    await client.deployments.predictions.create("acme/my-app", input={})
    request = sent(mocked, "POST", url)
    assert_standard_headers(request, content_type=JSON)
    assert request.json() == {"input": {}}


# -- files --------------------------------------------------------------------------


async def test_files_list(client: AsyncReplicate, mocked: aioresponses) -> None:
    """files.list: GET /files gives a Page of File."""
    mocked.get(f"{API}/files", payload=example("page-files-list"))
    page = await client.files.list()
    assert_standard_headers(sent(mocked, "GET", f"{API}/files"))
    assert all(isinstance(f, File) for f in page.results)
    first = page.results[0]
    assert first.id == "M2Q1N2Q1ZjQtYWY0Mi00NzhiLTk5YTktNzMzMTc2MzcyMTcy"
    assert first.checksums is not None
    assert "sha256" in first.checksums
    assert first.created_at == datetime(2024, 8, 22, 12, 22, 42, 494000, tzinfo=UTC)


async def test_files_create(client: AsyncReplicate, mocked: aioresponses) -> None:
    """files.create: multipart POST /files with a `content` part and a JSON `metadata` part."""
    mocked.post(f"{API}/files", status=201, payload=example("file-create-201"))
    file = await client.files.create(
        b"hello world", filename="hello.txt", metadata={"purpose": "test", "n": 1}
    )
    request = sent(mocked, "POST", f"{API}/files")
    # aiohttp sets the multipart Content-Type (with its boundary) from the form itself.
    assert_standard_headers(request)
    content_type, parts = await multipart_parts(request.data)
    assert content_type.startswith("multipart/form-data; boundary=")
    assert [p.name for p in parts] == ["content", "filename", "metadata"]
    content, name, metadata = parts
    assert name.body == b"hello.txt"  # the API's own field: the exact name, as UTF-8
    assert content.filename == "hello.txt"
    assert content.content_type == "text/plain"
    assert content.body == b"hello world"
    assert metadata.filename is None
    assert metadata.content_type == "application/json"
    assert json.loads(metadata.body) == {"purpose": "test", "n": 1}
    assert isinstance(file, File)
    assert file.id == "NGZiNmY2YzQtMThhZi00ZjcyLWFhZjktODg4NTY0NWNlMDEy"
    assert file.size == 0
    assert file.urls == {"get": f"{API}/files/NGZiNmY2YzQtMThhZi00ZjcyLWFhZjktODg4NTY0NWNlMDEy"}
    assert file.expires_at == datetime(2024, 8, 23, 12, 26, 51, 79000, tzinfo=UTC)


async def test_files_create_defaults(client: AsyncReplicate, mocked: aioresponses) -> None:
    """files.create: no filename/type gives 'file', octet-stream, and `{}` metadata."""
    mocked.post(f"{API}/files", status=201, payload=example("file-create-201"))
    await client.files.create(b"\x00\x01")
    _, parts = await multipart_parts(sent(mocked, "POST", f"{API}/files").data)
    assert parts[0].filename == "file"
    assert parts[0].content_type == "application/octet-stream"
    assert parts[0].body == b"\x00\x01"
    assert parts[1].body == b"file"
    assert parts[2].body == b"{}"


async def test_files_create_from_file_object(client: AsyncReplicate, mocked: aioresponses) -> None:
    """files.create: a binary file object is read from its position; an explicit type wins."""
    mocked.post(f"{API}/files", status=201, payload=example("file-create-201"))
    stream = io.BytesIO(b"skip:payload")
    stream.seek(5)
    await client.files.create(stream, filename="x.bin", content_type="image/png")
    _, parts = await multipart_parts(sent(mocked, "POST", f"{API}/files").data)
    assert parts[0].filename == "x.bin"
    assert parts[0].content_type == "image/png"
    assert parts[0].body == b"payload"
    assert not stream.closed


async def test_files_get(client: AsyncReplicate, mocked: aioresponses) -> None:
    """files.get: GET /files/{id}."""
    fid = "NGZiNmY2YzQtMThhZi00ZjcyLWFhZjktODg4NTY0NWNlMDEy"
    mocked.get(f"{API}/files/{fid}", payload=example("file-create-201"))
    file = await client.files.get(fid)
    assert_standard_headers(sent(mocked, "GET", f"{API}/files/{fid}"))
    assert file.id == fid
    assert file.content_type == "text/plain"
    assert file.etag == "d41d8cd98f00b204e9800998ecf8427e"


async def test_files_delete(client: AsyncReplicate, mocked: aioresponses) -> None:
    """files.delete: DELETE /files/{id}, 204 gives None."""
    mocked.delete(f"{API}/files/abc", status=204, body=b"")
    assert await client.files.delete("abc") is None
    request = sent(mocked, "DELETE", f"{API}/files/abc")
    assert_standard_headers(request)
    assert request.body is None


async def test_files_download(client: AsyncReplicate, mocked: aioresponses) -> None:
    """files.download: GET /files/{id}/download with owner/expiry/signature, returns bytes."""
    url = f"{API}/files/abc/download?owner=acme&expiry=1700000000&signature=c2ln%2Bbg%3D%3D"
    mocked.get(url, body=b"\x89PNG\x00raw", content_type="application/octet-stream")
    data = await client.files.download(
        "abc", owner="acme", expiry=1700000000, signature="c2ln+bg=="
    )
    request = sent(mocked, "GET", url)
    assert request.path == "/v1/files/abc/download"
    assert request.query == {"owner": "acme", "expiry": "1700000000", "signature": "c2ln+bg=="}
    assert_standard_headers(request, accept="application/octet-stream")
    assert data == b"\x89PNG\x00raw"


# -- models -------------------------------------------------------------------------


async def test_models_list(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.list: GET /models with sort_by and sort_direction query parameters."""
    url = f"{API}/models?sort_by=model_created_at&sort_direction=asc"
    mocked.get(url, payload=example("page-models-list-TRUNCATED"))
    page = await client.models.list(sort_by="model_created_at", sort_direction="asc")
    request = sent(mocked, "GET", url)
    assert request.query == {"sort_by": "model_created_at", "sort_direction": "asc"}
    assert_standard_headers(request)
    assert page.results[0].ref == "catio-apps/controlnet-interior-design"
    assert page.next == example("page-models-list-TRUNCATED")["next"]


async def test_models_list_no_filters(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.list: without arguments no query string is sent."""
    mocked.get(f"{API}/models", payload=_page())
    page = await client.models.list()
    assert sent(mocked, "GET", f"{API}/models").query == {}
    assert page.results == []


async def test_models_search(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.search: QUERY /models with the raw text body and Content-Type text/plain."""
    mocked.add(
        f"{API}/models", method="QUERY", payload=example("page-models-search-query-TRUNCATED")
    )
    page = await client.models.search("llama 3")
    request = sent(mocked, "QUERY", f"{API}/models")
    assert request.method == "QUERY"
    assert request.body == b"llama 3"
    assert request.query == {}
    assert_standard_headers(request, content_type="text/plain")
    assert all(isinstance(m, Model) for m in page.results)
    assert page.results[0].owner == "meta"
    assert page.next is None


async def test_models_create(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.create: POST /models with required and given optional fields only."""
    mocked.post(f"{API}/models", status=201, payload=example("model-create-201"))
    model = await client.models.create(
        "test",
        "python-example",
        visibility="private",
        hardware="cpu",
        description="An example model",
        github_url="https://github.com/x/y",
    )
    request = sent(mocked, "POST", f"{API}/models")
    assert_standard_headers(request, content_type=JSON)
    assert request.json() == {
        "owner": "test",
        "name": "python-example",
        "visibility": "private",
        "hardware": "cpu",
        "description": "An example model",
        "github_url": "https://github.com/x/y",
    }
    assert model.ref == "test/python-example"
    assert model.visibility == "private"
    assert model.latest_version is None
    assert model.default_example is None
    assert model.run_count == 0


async def test_models_get(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.get: GET /models/{owner}/{name} with nested version and default example."""
    url = f"{API}/models/stability-ai/sdxl"
    mocked.get(url, payload=example("model-get-sdxl"))
    model = await client.models.get("stability-ai/sdxl")
    assert_standard_headers(sent(mocked, "GET", url))
    assert model.ref == "stability-ai/sdxl"
    assert model.run_count == 66336540
    assert isinstance(model.latest_version, Version)
    assert (
        model.latest_version.id
        == "7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
    )
    assert isinstance(model.default_example, Prediction)
    assert model.default_example.id == "dzsqmb3bg4lqpjkz2iptjqgccm"
    assert model.created_at == datetime(2023, 7, 26, 17, 53, 9, 882651, tzinfo=UTC)
    assert model.weights_url == example("model-get-sdxl")["weights_url"]


async def test_models_update(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.update: PATCH with exactly the changed fields."""
    url = f"{API}/models/mattt/empty"
    mocked.patch(url, payload=example("model-get-no-versions"))
    model = await client.models.update("mattt/empty", description="new", readme="# Hi")
    request = sent(mocked, "PATCH", url)
    assert_standard_headers(request, content_type=JSON)
    assert request.json() == {"description": "new", "readme": "# Hi"}
    assert model.ref == "mattt/empty"


async def test_models_delete(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.delete: DELETE /models/{owner}/{name}, 204 gives None."""
    url = f"{API}/models/mattt/empty"
    mocked.delete(url, status=204, body=b"")
    assert await client.models.delete("mattt/empty") is None
    assert_standard_headers(sent(mocked, "DELETE", url))


async def test_models_examples_list(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.examples.list: GET .../examples gives a Page of Predictions."""
    url = f"{API}/models/stability-ai/sdxl/examples"
    mocked.get(url, payload=example("page-predictions-list-spec-example"))
    page = await client.models.examples.list("stability-ai/sdxl")
    assert_standard_headers(sent(mocked, "GET", url))
    assert isinstance(page.results[0], Prediction)
    assert page.results[0].id == "gm3qorzdhgbfurvjtvhg6dckhu"
    assert page.results[0].output == "hello Alice"


async def test_models_predictions_create(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.predictions.create: POST /models/{owner}/{name}/predictions (official model)."""
    url = f"{API}/models/meta/meta-llama-3-8b-instruct/predictions"
    mocked.post(url, status=201, payload=example("prediction-create-official-model-starting"))
    prediction = await client.models.predictions.create(
        "meta/meta-llama-3-8b-instruct",
        input={"prompt": "write a haiku about llamas"},
        wait=10,
        stream=True,
        cancel_after="5m",
    )
    request = sent(mocked, "POST", url)
    assert_standard_headers(
        request, content_type=JSON, extra={"Prefer": "wait=10", "Cancel-After": "5m"}
    )
    assert request.json() == {"input": {"prompt": "write a haiku about llamas"}, "stream": True}
    # The API may answer with a different model name and a non-hex version: kept as is.
    assert prediction.model == "replicate-internal/llama-3-8b-instruct-int8-triton"
    assert prediction.version == "dp-a557b7387b4940df25b23f779dc534c4"
    assert prediction.created_at == datetime(2024, 4, 22, 11, 15, 1, 40000, tzinfo=UTC)


async def test_models_readme_get(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.readme.get: GET .../readme with Accept text/plain returns the Markdown text."""
    url = f"{API}/models/mattt/empty/readme"
    mocked.get(url, body="# Empty\n\nNothing — here.\n".encode(), content_type="text/plain")
    readme = await client.models.readme.get("mattt/empty")
    assert_standard_headers(sent(mocked, "GET", url), accept="text/plain")
    assert readme == "# Empty\n\nNothing — here.\n"


async def test_models_versions_list(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.versions.list: GET .../versions gives a Page of Version."""
    url = f"{API}/models/stability-ai/sdxl/versions"
    mocked.get(url, payload=_page(example("version-get-sdxl")))
    page = await client.models.versions.list("stability-ai/sdxl")
    assert_standard_headers(sent(mocked, "GET", url))
    assert [v.id for v in page.results] == [VERSION_ID]
    assert page.results[0].cog_version == "0.8.6"


async def test_models_versions_get(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.versions.get: GET .../versions/{id} with the OpenAPI schema kept as a dict."""
    url = f"{API}/models/stability-ai/sdxl/versions/{VERSION_ID}"
    mocked.get(url, payload=example("version-get-sdxl"))
    version = await client.models.versions.get("stability-ai/sdxl", VERSION_ID)
    assert_standard_headers(sent(mocked, "GET", url))
    assert isinstance(version, Version)
    assert version.id == VERSION_ID
    assert version.openapi_schema is not None
    assert "Input" in version.openapi_schema["components"]["schemas"]
    assert version.created_at == datetime(2023, 11, 6, 23, 13, 7, 906314, tzinfo=UTC)


async def test_models_versions_delete(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.versions.delete: DELETE .../versions/{id}; 202 with an empty body gives None."""
    url = f"{API}/models/acme/mine/versions/{VERSION_ID}"
    mocked.delete(url, status=202, body=b"")
    assert await client.models.versions.delete("acme/mine", VERSION_ID) is None
    assert_standard_headers(sent(mocked, "DELETE", url))


# -- trainings ----------------------------------------------------------------------


async def test_trainings_create(client: AsyncReplicate, mocked: aioresponses) -> None:
    """trainings.create: POST .../versions/{id}/trainings with destination, input, webhook."""
    url = f"{API}/models/stability-ai/sdxl/versions/{VERSION_ID}/trainings"
    mocked.post(url, status=201, payload=example("training-create-starting"))
    training = await client.trainings.create(
        "stability-ai/sdxl",
        VERSION_ID,
        destination="acme/my-sdxl",
        input={"input_images": "https://example.com/data.zip"},
        webhook="https://example.com/hook",
        webhook_events_filter=["completed"],
    )
    request = sent(mocked, "POST", url)
    assert_standard_headers(request, content_type=JSON)
    assert request.json() == {
        "destination": "acme/my-sdxl",
        "input": {"input_images": "https://example.com/data.zip"},
        "webhook": "https://example.com/hook",
        "webhook_events_filter": ["completed"],
    }
    assert isinstance(training, Training)
    assert training.id == "wj4is6lbdqqkdepnwpr6v2kuva"
    assert training.status == "starting"
    # R 2023: create responses point urls at /predictions; they are kept, never rebuilt.
    assert training.urls is not None
    assert training.urls.get == f"{API}/predictions/wj4is6lbdqqkdepnwpr6v2kuva"


async def test_trainings_create_with_version_ref(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """trainings.create: 'owner/name:version' works without a separate version argument."""
    url = f"{API}/models/stability-ai/sdxl/versions/{VERSION_ID}/trainings"
    mocked.post(url, status=201, payload=example("training-create-spec-example"))
    training = await client.trainings.create(
        f"stability-ai/sdxl:{VERSION_ID}", destination="acme/x", input={"a": 1}
    )
    assert sent(mocked, "POST", url).json() == {"destination": "acme/x", "input": {"a": 1}}
    assert training.id == "zz4ibbonubfz7carwiefibzgga"


async def test_trainings_list(client: AsyncReplicate, mocked: aioresponses) -> None:
    """trainings.list: GET /trainings gives a Page of Training."""
    body = _page(example("training-get-processing"), example("training-get-succeeded-spec-example"))
    mocked.get(f"{API}/trainings", payload=body)
    page = await client.trainings.list()
    assert_standard_headers(sent(mocked, "GET", f"{API}/trainings"))
    assert [t.status for t in page.results] == ["processing", "succeeded"]
    assert page.results[1].output == {"version": "...", "weights": "..."}


async def test_trainings_get(client: AsyncReplicate, mocked: aioresponses) -> None:
    """trainings.get: GET /trainings/{id}."""
    url = f"{API}/trainings/medrnz3bm5dd6ultvad2tejrte"
    mocked.get(url, payload=example("training-get-processing"))
    training = await client.trainings.get("medrnz3bm5dd6ultvad2tejrte")
    assert_standard_headers(sent(mocked, "GET", url))
    assert training.status == "processing"
    assert training.completed_at is None
    assert training.metrics == {}
    assert not training.done


async def test_trainings_cancel(client: AsyncReplicate, mocked: aioresponses) -> None:
    """trainings.cancel: POST /trainings/{id}/cancel with no body."""
    url = f"{API}/trainings/xxi2kydbnla3ocjp64sclkewku/cancel"
    mocked.post(url, payload=example("training-cancel-canceled"))
    training = await client.trainings.cancel("xxi2kydbnla3ocjp64sclkewku")
    request = sent(mocked, "POST", url)
    assert request.body is None
    assert_standard_headers(request)
    assert training.status == "canceled"
    assert training.done


# -- predictions --------------------------------------------------------------------


async def test_predictions_list(client: AsyncReplicate, mocked: aioresponses) -> None:
    """predictions.list: GET /predictions with created_after/created_before/source."""
    url = (
        f"{API}/predictions?created_after=2024-01-01T00:00:00Z"
        "&created_before=2024-02-01T00:00:00%2B00:00&source=web"
    )
    mocked.get(url, payload=example("page-predictions-list-spec-example"))
    page = await client.predictions.list(
        created_after="2024-01-01T00:00:00Z",
        created_before=datetime(2024, 2, 1, tzinfo=UTC),
        source="web",
    )
    request = sent(mocked, "GET", url)
    assert request.query == {
        "created_after": "2024-01-01T00:00:00Z",
        "created_before": "2024-02-01T00:00:00+00:00",
        "source": "web",
    }
    assert_standard_headers(request)
    assert page.results[0].status == "succeeded"
    assert page.results[0].metrics == {"predict_time": 0.012683}


async def test_predictions_list_naive_datetime_is_utc(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """predictions.list: a naive datetime is sent as UTC with a Z suffix."""
    url = f"{API}/predictions?created_after=2024-01-01T12:30:00Z"
    mocked.get(url, payload=_page())
    await client.predictions.list(created_after=datetime(2024, 1, 1, 12, 30))
    assert sent(mocked, "GET", url).query == {"created_after": "2024-01-01T12:30:00Z"}


@pytest.mark.parametrize(
    "version",
    [
        VERSION_ID,
        f"stability-ai/sdxl:{VERSION_ID}",
        "black-forest-labs/flux-schnell",
    ],
    ids=["id", "owner/name:id", "owner/name"],
)
async def test_predictions_create_version_forms(
    client: AsyncReplicate, mocked: aioresponses, version: str
) -> None:
    """predictions.create: each accepted `version` form is sent unchanged in the body."""
    mocked.post(
        f"{API}/predictions", status=201, payload=example("prediction-create-async-starting")
    )
    prediction = await client.predictions.create(version=version, input={"prompt": "corgi"})
    request = sent(mocked, "POST", f"{API}/predictions")
    assert_standard_headers(request, content_type=JSON)
    assert request.json() == {"version": version, "input": {"prompt": "corgi"}}
    assert prediction.id == "vgcm4plb7tgzlyznry5d5jkgvu"
    assert prediction.urls is not None
    assert prediction.urls.cancel == f"{API}/predictions/vgcm4plb7tgzlyznry5d5jkgvu/cancel"


@pytest.mark.parametrize(
    ("wait", "prefer", "read_timeout"),
    [(True, "wait", 65.0), (10, "wait=10", 60.0), (60, "wait=60", 65.0), (1, "wait=1", 60.0)],
)
async def test_predictions_create_prefer_wait(
    client: AsyncReplicate,
    mocked: aioresponses,
    watched: list[Watched],
    wait: bool | int,
    prefer: str,
    read_timeout: float,
) -> None:
    """predictions.create: wait= sends Prefer and raises the read timeout above the hold."""
    mocked.post(
        f"{API}/predictions",
        status=201,
        payload=example("prediction-create-prefer-wait-processing-with-output"),
        headers={"Preference-Applied": prefer},
    )
    prediction = await client.predictions.create(version=VERSION_ID, input={}, wait=wait)
    request = sent(mocked, "POST", f"{API}/predictions")
    assert_standard_headers(request, content_type=JSON, extra={"Prefer": prefer})
    # The headers may take the whole hold (+5 s): the watch for them is that long.
    assert len(watched) == 1
    assert enforced(request.kwargs["timeout"], watched[0]) == (10, read_timeout, 300)
    assert watched[0].timing.first == read_timeout
    assert prediction.status == "processing"
    assert prediction.output is not None


@pytest.mark.parametrize("status", [201, 202])
async def test_predictions_create_201_and_202(
    client: AsyncReplicate, mocked: aioresponses, status: int
) -> None:
    """predictions.create: 201 and 202 are both a created prediction."""
    mocked.post(
        f"{API}/predictions", status=status, payload=example("prediction-create-stream-url")
    )
    prediction = await client.predictions.create(version=VERSION_ID, input={}, stream=True)
    assert sent(mocked, "POST", f"{API}/predictions").json()["stream"] is True
    assert prediction.urls is not None
    assert prediction.urls.stream is not None
    assert prediction.raw["stream"] is True


async def test_predictions_create_cancel_after_and_webhook(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """predictions.create: Cancel-After header and webhook fields in the body."""
    mocked.post(
        f"{API}/predictions", status=201, payload=example("prediction-create-async-starting")
    )
    await client.predictions.create(
        version=VERSION_ID,
        input={"n": 1},
        cancel_after=30,
        webhook="https://example.com/w",
        webhook_events_filter=["start", "output", "logs", "completed"],
    )
    request = sent(mocked, "POST", f"{API}/predictions")
    assert_standard_headers(request, content_type=JSON, extra={"Cancel-After": "30s"})
    assert request.json() == {
        "version": VERSION_ID,
        "input": {"n": 1},
        "webhook": "https://example.com/w",
        "webhook_events_filter": ["start", "output", "logs", "completed"],
    }


async def test_predictions_get(client: AsyncReplicate, mocked: aioresponses) -> None:
    """predictions.get: GET /predictions/{id} with metrics, output and timestamps."""
    url = f"{API}/predictions/vgcm4plb7tgzlyznry5d5jkgvu"
    mocked.get(url, payload=example("prediction-get-succeeded"))
    prediction = await client.predictions.get("vgcm4plb7tgzlyznry5d5jkgvu")
    request = sent(mocked, "GET", url)
    assert_standard_headers(request)
    assert request.body is None
    body = example("prediction-get-succeeded")
    assert prediction.status == "succeeded"
    assert prediction.succeeded
    assert prediction.done
    assert prediction.output == body["output"]
    assert prediction.metrics == body["metrics"]
    assert prediction.logs == body["logs"]
    assert prediction.completed_at is not None
    assert prediction.completed_at.tzinfo is not None


async def test_predictions_cancel(client: AsyncReplicate, mocked: aioresponses) -> None:
    """predictions.cancel: POST /predictions/{id}/cancel with no body or Content-Type."""
    url = f"{API}/predictions/hdwst0bb05rgp0cf0p29mzk2am/cancel"
    mocked.post(url, payload=example("prediction-cancel-canceled"))
    prediction = await client.predictions.cancel("hdwst0bb05rgp0cf0p29mzk2am")
    request = sent(mocked, "POST", url)
    assert request.body is None
    assert_standard_headers(request)
    assert prediction.status == "canceled"
    assert prediction.logs is None
    assert prediction.raw["webhook_completed"] is None


async def test_path_segments_are_percent_encoded(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """An id with URL metacharacters is one encoded path segment, never a query or new path."""
    url = f"{API}/predictions/a%3Fb%23c"
    mocked.get(url, payload=example("prediction-get-processing"))
    await client.predictions.get("a?b#c")
    request = sent(mocked, "GET", url)
    assert request.url.raw_path == "/v1/predictions/a%3Fb%23c"
    assert request.query == {}
    assert request_count(mocked) == 1


#: The 37 operationIds of the OpenAPI document, each with the test proving it above.
OPERATION_TESTS = {
    "account.get": "test_account_get",
    "collections.list": "test_collections_list",
    "collections.get": "test_collections_get",
    "deployments.list": "test_deployments_list",
    "deployments.create": "test_deployments_create",
    "deployments.get": "test_deployments_get",
    "deployments.update": "test_deployments_update",
    "deployments.delete": "test_deployments_delete",
    "deployments.predictions.create": "test_deployments_predictions_create",
    "files.list": "test_files_list",
    "files.create": "test_files_create",
    "files.get": "test_files_get",
    "files.delete": "test_files_delete",
    "files.download": "test_files_download",
    "hardware.list": "test_hardware_list",
    "models.list": "test_models_list",
    "models.search": "test_models_search",
    "models.create": "test_models_create",
    "models.get": "test_models_get",
    "models.update": "test_models_update",
    "models.delete": "test_models_delete",
    "models.examples.list": "test_models_examples_list",
    "models.predictions.create": "test_models_predictions_create",
    "models.readme.get": "test_models_readme_get",
    "models.versions.list": "test_models_versions_list",
    "models.versions.get": "test_models_versions_get",
    "models.versions.delete": "test_models_versions_delete",
    "trainings.create": "test_trainings_create",
    "trainings.list": "test_trainings_list",
    "trainings.get": "test_trainings_get",
    "trainings.cancel": "test_trainings_cancel",
    "predictions.list": "test_predictions_list",
    "predictions.create": "test_predictions_create_version_forms",
    "predictions.get": "test_predictions_get",
    "predictions.cancel": "test_predictions_cancel",
    "search": "test_search",
    "webhooks.default.secret.get": "test_webhooks_default_secret_get",
}


def test_every_operation_has_a_test() -> None:
    """All 37 operations are covered, and each named test exists in this module."""
    assert len(OPERATION_TESTS) == 37
    for operation, name in OPERATION_TESTS.items():
        assert callable(globals().get(name)), operation
    # Every operation is reachable on the client under its operationId's path.
    client = AsyncReplicate(api_token="x")
    for operation in OPERATION_TESTS:
        target: object = client
        for part in operation.split("."):
            target = getattr(target, part)
        assert callable(target), operation
