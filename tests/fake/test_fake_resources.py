"""Models, versions, collections, deployments, search, account and hardware."""

from __future__ import annotations

from replicate_async.testing import FakeReplicate

from .conftest import Api


async def test_query_models_search(api: Api) -> None:
    resp = await api.request(
        "QUERY", "/v1/models", data="llama", headers={"Content-Type": "text/plain"}
    )
    assert resp.status == 200
    page = resp.json()
    assert set(page) == {"next", "previous", "results"}
    assert page["next"] is None
    assert page["previous"] is None
    names = [f"{m['owner']}/{m['name']}" for m in page["results"]]
    assert names == ["meta/meta-llama-3-8b-instruct"]
    resp = await api.request(
        "QUERY", "/v1/models", data="fake", headers={"Content-Type": "text/plain"}
    )
    assert {m["owner"] for m in resp.json()["results"]} == {"fake"}
    assert len(resp.json()["results"]) == 6
    resp = await api.request("QUERY", "/v1/models", data="zzzz-nothing")
    assert resp.json()["results"] == []
    assert api.fake.requests[-1].text == "zzzz-nothing"


async def test_model_crud(api: Api) -> None:
    body = {
        "owner": "alice",
        "name": "hotdog-detector",
        "visibility": "private",
        "hardware": "gpu-t4",
        "description": "Detect hot dogs",
    }
    resp = await api.post("/v1/models", json=body)
    assert resp.status == 201
    model = resp.json()
    assert model["url"] == "https://replicate.com/alice/hotdog-detector"
    assert model["latest_version"] is None
    assert model["run_count"] == 0
    assert (await api.post("/v1/models", json=body)).status == 409
    assert (await api.post("/v1/models", json={**body, "owner": "bob"})).status == 403
    assert (
        await api.post("/v1/models", json={**body, "name": "x", "hardware": "tpu"})
    ).status == 400
    resp = await api.post("/v1/models", json={"owner": "alice"})
    assert resp.status == 422
    assert [f["description"] for f in resp.json()["invalid_fields"]] == [
        "name is required",
        "visibility is required",
        "hardware is required",
    ]

    patched = await api.request(
        "PATCH",
        "/v1/models/alice/hotdog-detector",
        json={"readme": "# Hot dogs", "paper_url": "https://p"},
    )
    assert patched.status == 200
    assert patched.json()["paper_url"] == "https://p"
    readme = await api.get("/v1/models/alice/hotdog-detector/readme")
    assert (readme.status, readme.content_type, readme.text) == (200, "text/plain", "# Hot dogs")
    assert (await api.request("PATCH", "/v1/models/fake/echo", json={"readme": "x"})).status == 403

    assert (await api.request("DELETE", "/v1/models/fake/echo")).status == 403
    assert (await api.request("DELETE", "/v1/models/alice/my-model")).status == 409  # has versions
    resp = await api.request("DELETE", "/v1/models/alice/hotdog-detector")
    assert resp.status == 204
    assert resp.body == b""
    assert (await api.get("/v1/models/alice/hotdog-detector")).status == 404


async def test_versions(api: Api, replicate_fake: FakeReplicate) -> None:
    page = (await api.get("/v1/models/stability-ai/sdxl/versions")).json()
    ids = [v["id"] for v in page["results"]]
    assert ids[0] == "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"
    assert len(ids) == 2
    version = (await api.get(f"/v1/models/stability-ai/sdxl/versions/{ids[0]}")).json()
    assert version["openapi_schema"]["components"]["schemas"]["Input"]["type"] == "object"
    assert (await api.get(f"/v1/models/fake/echo/versions/{ids[0]}")).status == 404
    assert (
        await api.request("DELETE", f"/v1/models/stability-ai/sdxl/versions/{ids[0]}")
    ).status == 403
    own = replicate_fake.latest_version_id("alice/my-model")
    resp = await api.request("DELETE", f"/v1/models/alice/my-model/versions/{own}")
    assert resp.status == 202
    assert resp.body == b""
    assert (await api.get(f"/v1/models/alice/my-model/versions/{own}")).status == 404


async def test_private_models_of_others_are_hidden(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.account["username"] = "mallory"
    assert (await api.get("/v1/models/alice/my-model")).status == 404
    resp = await api.post("/v1/predictions", json={"version": "alice/my-model", "input": {}})
    assert resp.status == 422


async def test_examples_and_collections(api: Api) -> None:
    examples = (await api.get("/v1/models/stability-ai/sdxl/examples")).json()["results"]
    assert examples[0]["id"] == "dzsqmb3bg4lqpjkz2iptjqgccm"
    assert (await api.get("/v1/models/fake/echo/examples")).json()["results"] == []
    collections = (await api.get("/v1/collections")).json()["results"]
    assert collections[0] == {
        "name": "Text to image",
        "slug": "text-to-image",
        "description": "Models that generate images from text prompts",
    }
    got = (await api.get("/v1/collections/text-to-image")).json()
    assert [m["name"] for m in got["models"]] == ["image", "sdxl", "flux-schnell"]
    assert (await api.get("/v1/collections/nope")).status == 404


async def test_deployments_crud(api: Api, replicate_fake: FakeReplicate) -> None:
    echo = replicate_fake.latest_version_id("fake/echo")
    body = {
        "name": "my-dep",
        "model": "fake/echo",
        "version": echo,
        "hardware": "cpu",
        "min_instances": 0,
        "max_instances": 1,
    }
    resp = await api.post("/v1/deployments", json=body)
    assert resp.status == 200
    dep = resp.json()
    assert dep["owner"] == "alice"
    assert dep["current_release"]["number"] == 1
    assert dep["current_release"]["created_by"]["username"] == "alice"
    assert (await api.post("/v1/deployments", json=body)).status == 409
    resp = await api.post("/v1/deployments", json={**body, "name": "x2", "max_instances": 21})
    assert resp.status == 422
    assert resp.json()["invalid_fields"][0]["type"] == "number_lte"
    resp = await api.post("/v1/deployments", json={**body, "name": "x3", "version": "f" * 64})
    assert resp.status == 422
    listed = (await api.get("/v1/deployments")).json()["results"]
    assert listed[0]["name"] == "my-dep"  # newest first
    same = await api.request("PATCH", "/v1/deployments/alice/my-dep", json={"hardware": "cpu"})
    assert same.json()["current_release"]["number"] == 1  # nothing changed
    changed = await api.request(
        "PATCH", "/v1/deployments/alice/my-dep", json={"hardware": "gpu-t4", "max_instances": 4}
    )
    release = changed.json()["current_release"]
    assert release["number"] == 2
    assert release["configuration"] == {
        "hardware": "gpu-t4",
        "min_instances": 0,
        "max_instances": 4,
    }
    assert (await api.request("DELETE", "/v1/deployments/alice/my-dep")).status == 204
    assert (await api.get("/v1/deployments/alice/my-dep")).status == 404


async def test_search(api: Api) -> None:
    resp = await api.get("/v1/search?query=image&limit=2", auth=False)
    assert resp.status == 200
    body = resp.json()
    assert body["query"] == "image"
    assert len(body["models"]) == 2
    assert set(body["models"][0]) == {"model", "metadata"}
    assert any(c["slug"] == "text-to-image" for c in body["collections"])
    assert body["pages"][0]["href"] == "/docs/guides/image-editing"
    missing = await api.get("/v1/search")
    assert missing.status == 400
    assert missing.content_type == "application/json"
    assert missing.json() == {"detail": 'Query parameter "query" is required'}
    assert (await api.get("/v1/search?query=x&limit=51")).status == 400


async def test_account_hardware_secret(api: Api, replicate_fake: FakeReplicate) -> None:
    account = (await api.get("/v1/account")).json()
    assert account == {
        "type": "user",
        "username": "alice",
        "name": "Alice Example",
        "github_url": "https://github.com/alice",
        "avatar_url": "https://cdn.replicate.com/avatars/alice.png",
    }
    hardware = (await api.get("/v1/hardware")).json()
    assert isinstance(hardware, list)
    assert {"sku": "gpu-t4", "name": "Nvidia T4 GPU"} in hardware
    secret = (await api.get("/v1/webhooks/default/secret")).json()
    assert secret == {"key": replicate_fake.webhook_secret}
