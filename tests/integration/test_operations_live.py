"""Every one of the 37 operations through the SDK against the fake server, over real sockets.

The unit suite pins the exact requests with aioresponses; these prove that the requests
the SDK builds are accepted by a faithful server and that the real responses structure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from replicate_async import (
    Account,
    AsyncReplicate,
    Collection,
    Deployment,
    File,
    Hardware,
    Model,
    NotFoundError,
    Prediction,
    SearchResult,
    Training,
    UnprocessableEntityError,
    Version,
)
from replicate_async.testing import FakeReplicate


@pytest.fixture
async def fake() -> AsyncIterator[FakeReplicate]:
    async with FakeReplicate() as server:
        yield server


@pytest.fixture
async def client(fake: FakeReplicate) -> AsyncIterator[AsyncReplicate]:
    async with fake.client() as c:
        yield c


async def test_account_get(client: AsyncReplicate) -> None:
    """account.get returns the seeded user."""
    account = await client.account.get()
    assert isinstance(account, Account)
    assert (account.type, account.username) == ("user", "alice")


async def test_collections_list_and_get(client: AsyncReplicate) -> None:
    """collections.list walks every collection; collections.get includes its models."""
    collections = [c async for c in client.collections.list()]
    assert len(collections) == 9
    assert all(isinstance(c, Collection) for c in collections)
    full = await client.collections.get(collections[0].slug)
    assert full.models
    assert all(isinstance(m, Model) for m in full.models)


async def test_hardware_list(client: AsyncReplicate) -> None:
    """hardware.list returns the bare array as Hardware objects."""
    hardware = await client.hardware.list()
    assert [h.sku for h in hardware][:2] == ["cpu", "gpu-t4"]
    assert all(isinstance(h, Hardware) for h in hardware)


async def test_models_list_get_search_readme_examples(client: AsyncReplicate) -> None:
    """models.list, get, search (QUERY), readme.get and examples.list."""
    refs = [m.ref async for m in client.models.list(sort_by="model_created_at")]
    assert "fake/echo" in refs
    assert "stability-ai/sdxl" in refs
    sdxl = await client.models.get("stability-ai/sdxl")
    assert sdxl.latest_version is not None
    assert isinstance(sdxl.latest_version, Version)
    found = [m.ref async for m in client.models.search("sdxl")]
    assert "stability-ai/sdxl" in found
    readme = await client.models.readme.get("stability-ai/sdxl")
    assert isinstance(readme, str)
    assert readme
    examples = [p async for p in client.models.examples.list("stability-ai/sdxl")]
    assert all(isinstance(p, Prediction) for p in examples)


async def test_models_create_update_delete(client: AsyncReplicate) -> None:
    """models.create, update (PATCH) and delete of a private model without versions."""
    model = await client.models.create("alice", "brand-new", visibility="private", hardware="cpu")
    assert model.ref == "alice/brand-new"
    updated = await client.models.update("alice/brand-new", description="now described")
    assert updated.description == "now described"
    await client.models.delete("alice/brand-new")
    with pytest.raises(NotFoundError):
        await client.models.get("alice/brand-new")


async def test_versions_list_get_delete(client: AsyncReplicate, fake: FakeReplicate) -> None:
    """models.versions.list/get, and delete of a version of your own private model."""
    versions = [v async for v in client.models.versions.list("stability-ai/sdxl")]
    assert len(versions) == 2
    one = await client.models.versions.get("stability-ai/sdxl", versions[0].id)
    assert one.id == versions[0].id
    assert one.openapi_schema
    own = fake.latest_version_id("alice/my-model")
    await client.models.versions.delete("alice/my-model", own)
    assert fake.count("DELETE", f"/v1/models/alice/my-model/versions/{own}") == 1


async def test_predictions_create_get_list_cancel(client: AsyncReplicate) -> None:
    """predictions.create (three version forms), get, list and cancel."""
    version = "fake/echo"
    p1 = await client.predictions.create(version=version, input={"text": "a"}, wait=5)
    assert p1.status == "succeeded"
    assert p1.output == {"text": "a"}
    got = await client.predictions.get(p1.id)
    assert got.id == p1.id
    listed = [p.id async for p in client.predictions.list()]
    assert p1.id in listed
    slow = await client.predictions.create(version="fake/slow", input={})
    canceled = await client.predictions.cancel(slow.id)
    assert canceled.status == "canceled"


async def test_predictions_create_by_version_id(
    client: AsyncReplicate, fake: FakeReplicate
) -> None:
    """A bare version id and owner/name:id both create predictions."""
    vid = fake.latest_version_id("fake/upper")
    by_id = await client.predictions.create(version=vid, input={"text": "x"}, wait=5)
    by_ref = await client.predictions.create(
        version=f"fake/upper:{vid}", input={"text": "y"}, wait=5
    )
    assert (by_id.output, by_ref.output) == ("X", "Y")


async def test_predictions_invalid_input_is_422(client: AsyncReplicate) -> None:
    """The fake validates inputs like the API: 422 with invalid_fields."""
    with pytest.raises(UnprocessableEntityError) as caught:
        await client.predictions.create(version="fake/upper", input={})
    first = caught.value.invalid_fields[0]
    assert (first["type"], first["field"]) == ("required", "input")
    assert "text is required" in first["description"]


async def test_models_predictions_create(client: AsyncReplicate) -> None:
    """models.predictions.create runs an official model by name."""
    prediction = await client.models.predictions.create("fake/upper", input={"text": "hi"}, wait=5)
    assert prediction.output == "HI"


async def test_deployments_all_operations(client: AsyncReplicate, fake: FakeReplicate) -> None:
    """deployments.list/get/create/update/delete and deployments.predictions.create."""
    listed = [d.ref async for d in client.deployments.list()]
    assert "alice/echo-deployment" in listed
    got = await client.deployments.get("alice/echo-deployment")
    assert isinstance(got, Deployment)
    assert got.current_release is not None
    created = await client.deployments.create(
        name="fresh",
        model="fake/echo",
        version=fake.latest_version_id("fake/echo"),
        hardware="cpu",
        min_instances=0,
        max_instances=1,
    )
    assert created.ref == "alice/fresh"
    updated = await client.deployments.update("alice/fresh", max_instances=3)
    assert updated.current_release
    assert updated.current_release.configuration
    assert updated.current_release.configuration.max_instances == 3
    prediction = await client.deployments.predictions.create(
        "alice/fresh", input={"text": "d"}, wait=5
    )
    assert prediction.status == "succeeded"
    await client.deployments.delete("alice/fresh")
    with pytest.raises(NotFoundError):
        await client.deployments.get("alice/fresh")


async def test_trainings_create_get_list_cancel(
    client: AsyncReplicate, fake: FakeReplicate
) -> None:
    """trainings.create/get/list/cancel."""
    vid = fake.latest_version_id("fake/echo")
    training = await client.trainings.create(
        "fake/echo", vid, destination="alice/my-model", input={"steps": 1}
    )
    assert isinstance(training, Training)
    got = await client.trainings.get(training.id)
    assert got.id == training.id
    assert training.id in [t.id async for t in client.trainings.list()]
    canceled = await client.trainings.cancel(training.id)
    assert canceled.id == training.id


async def test_files_all_operations(client: AsyncReplicate, fake: FakeReplicate) -> None:
    """files.create (multipart), list, get, download (signed) and delete."""
    created = await client.files.create(b"hello bytes", filename="hello.txt", metadata={"k": 1})
    assert isinstance(created, File)
    assert created.size == 11
    assert created.id in [f.id async for f in client.files.list()]
    assert (await client.files.get(created.id)).checksums
    params = fake.signed_download_params(created.id)
    data = await client.files.download(
        created.id,
        owner=params["owner"],
        expiry=int(params["expiry"]),
        signature=params["signature"],
    )
    assert data == b"hello bytes"
    await client.files.delete(created.id)
    with pytest.raises(NotFoundError):
        await client.files.get(created.id)


async def test_webhook_secret_and_search(client: AsyncReplicate, fake: FakeReplicate) -> None:
    """webhooks.default.secret.get and search (which needs no token)."""
    secret = await client.webhooks.default.secret.get()
    assert secret.key == fake.webhook_secret
    assert secret.key not in repr(secret)
    result = await client.search("sdxl", limit=5)
    assert isinstance(result, SearchResult)
    assert any(m.model.ref == "stability-ai/sdxl" for m in result.models)
    search_requests = fake.requests_matching("GET", "/v1/search")
    assert search_requests
    assert "authorization" not in search_requests[-1].headers
