"""Cursor pagination: absolute links, opaque cursors, filters, sizes, big walks, quirks."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from replicate_async.testing import FakeReplicate, ManualClock
from replicate_async.testing._util import parse_ts

from .conftest import Api


async def walk(
    api: Api, first: str, limit: int = 10_000, **kwargs: object
) -> list[dict[str, object]]:
    """Follow ``next`` links (bounded), returning every result."""
    results: list[dict[str, object]] = []
    url: str | None = first
    for _ in range(limit):
        if url is None:
            return results
        resp = await api.request("GET", url, **kwargs)  # type: ignore[arg-type]
        assert resp.status == 200, resp.text
        page = resp.json()
        results.extend(page["results"])
        url = page["next"]
    raise AssertionError("pagination did not end")


@pytest.mark.replicate_fake(page_size=7)
async def test_walk_2000_synthetic_predictions(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.add_predictions(2100)
    results = await walk(api, "/v1/predictions")
    ids = [r["id"] for r in results]
    assert len(ids) == 2100 + 2  # plus the two seeded ones
    assert len(set(ids)) == len(ids)
    created = [parse_ts(str(r["created_at"])) for r in results]
    assert created == sorted(created, reverse=True)  # newest first
    assert replicate_fake.count("GET", "/v1/predictions") == (2102 + 6) // 7


async def test_next_is_absolute_on_the_fake_and_cursor_opaque(
    api: Api, replicate_fake: FakeReplicate
) -> None:
    replicate_fake.add_predictions(250)
    page = (await api.get("/v1/predictions")).json()
    assert len(page["results"]) == 100  # the real API's page size
    assert page["previous"] is None
    nxt = urlsplit(page["next"])
    assert f"{nxt.scheme}://{nxt.netloc}" == replicate_fake.origin
    assert nxt.path == "/v1/predictions"
    cursor = parse_qs(nxt.query)["cursor"][0]
    assert cursor.isascii()
    assert "=" not in cursor
    second = (await api.get(page["next"])).json()
    assert second["results"][0]["id"] != page["results"][-1]["id"]
    assert second["previous"] is not None
    back = (await api.get(second["previous"])).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in page["results"]]
    resp = await api.get("/v1/predictions?cursor=not-a-cursor!")
    assert resp.status == 404


async def test_filters_are_kept_in_next_links() -> None:
    clock = ManualClock(start=1_750_000_000)
    async with FakeReplicate(clock=clock, page_size=3) as fake, aiohttp.ClientSession() as s:
        api = Api(fake, s)
        ids = []
        for i in range(10):
            ids.append((await api.create("fake/echo", {"text": str(i)}))["id"])
            clock.advance(60)
        query = "created_after=2025-06-15T15:07:00Z&created_before=2025-06-15T15:12:30.5Z"
        first = (await api.get(f"/v1/predictions?{query}")).json()
        params = parse_qs(urlsplit(first["next"]).query)
        assert params["created_after"] == ["2025-06-15T15:07:00Z"]
        assert params["created_before"] == ["2025-06-15T15:12:30.5Z"]
        results = await walk(api, f"/v1/predictions?{query}")
        # created at 15:06:40 + 60 s * i: i = 1..5 fall inside the window.
        assert [r["id"] for r in results] == ids[5:0:-1]
        resp = await api.get("/v1/predictions?created_after=yesterday")
        assert resp.status == 400


async def test_source_web_filter(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.add_predictions(5, source="web")
    replicate_fake.add_predictions(5)
    page = (await api.get("/v1/predictions?source=web")).json()
    assert len(page["results"]) == 6  # 5 synthetic + 1 seeded web prediction
    assert all(r["source"] == "web" for r in page["results"])
    assert (await api.get("/v1/predictions?source=api")).status == 400


@pytest.mark.replicate_fake(page_size=50)
async def test_models_sorting(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.add_models(120)
    desc = await walk(api, "/v1/models")
    asc = await walk(api, "/v1/models?sort_direction=asc&sort_by=model_created_at")
    assert len(desc) == len(asc) > 120
    assert desc[0]["owner"] == "fake"  # seeded models are newer than synthetic ones
    assert asc[0]["name"] == f"model-{119:06d}"
    names = {f"{m['owner']}/{m['name']}" for m in desc}
    assert "alice/my-model" not in names  # private models are not listed
    page = (await api.get("/v1/models?sort_by=model_created_at&sort_direction=asc")).json()
    assert "sort_by=model_created_at" in page["next"]
    assert "sort_direction=asc" in page["next"]
    assert (await api.get("/v1/models?sort_by=name")).status == 400
    got = (await api.get("/v1/models/synthetic/model-000007")).json()
    assert got["latest_version"]["id"].startswith("fa4e")
    assert (await api.get("/v1/models/synthetic/model-999999")).status == 404


@pytest.mark.parametrize(
    ("quirk", "expect"),
    [
        ("foreign_host", "http://evil.example/v1/predictions?cursor="),
        ("relative", "/v1/predictions?cursor="),
        ("http", "http://api.replicate.com/v1/predictions?cursor="),
    ],
)
async def test_pagination_quirks(
    api: Api, replicate_fake: FakeReplicate, quirk: str, expect: str
) -> None:
    replicate_fake.add_predictions(150)
    replicate_fake.pagination_quirk = quirk  # type: ignore[assignment]
    page = (await api.get("/v1/predictions")).json()
    assert page["next"].startswith(expect)


async def test_pagination_loop_quirk(api: Api, replicate_fake: FakeReplicate) -> None:
    replicate_fake.add_predictions(350)
    replicate_fake.pagination_quirk = "loop"
    first = (await api.get("/v1/predictions")).json()
    second = (await api.get(first["next"])).json()
    assert second["next"] == first["next"]
    assert second["results"] == first["results"]
    replicate_fake.pagination_quirk = "null_string"
    assert (await api.get("/v1/collections")).json()["next"] == "null"
    with pytest.raises(ValueError, match="quirk"):
        replicate_fake.pagination_quirk = "nope"  # type: ignore[assignment]


async def test_200k_items_are_cheap(api: Api, replicate_fake: FakeReplicate) -> None:
    started = time.perf_counter()
    replicate_fake.add_predictions(200_000)
    replicate_fake.add_models(200_000)
    assert time.perf_counter() - started < 2.0
    page = (await api.get("/v1/predictions")).json()
    assert len(page["results"]) == 100
    last = (await api.get("/v1/predictions?created_before=2020-09-12T00:00:00Z")).json()
    assert last["results"][0]["id"].startswith("synth")
    got = await api.get(f"/v1/predictions/synth{199_999:021d}")
    assert got.status == 200
    assert got.json()["status"] == "succeeded"
    assert (await api.get(f"/v1/predictions/synth{200_000:021d}")).status == 404


@pytest.mark.replicate_fake(page_size=2)
async def test_every_list_endpoint_paginates(api: Api) -> None:
    for path in (
        "/v1/collections",
        "/v1/deployments",
        "/v1/models",
        "/v1/models/stability-ai/sdxl/versions",
    ):
        results = await walk(api, path)
        assert len(results) >= 2, path
        assert len({str(r) for r in results}) == len(results), path
