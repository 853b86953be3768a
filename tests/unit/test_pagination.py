"""Lazy cursor pagination: fetch counts, resuming, link following and its safety checks."""

from __future__ import annotations

import contextvars
import weakref
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from replicate_async import (
    APIResponseValidationError,
    AsyncPaginator,
    AsyncReplicate,
    Model,
    Page,
    PaginationError,
    Prediction,
)
from replicate_async._core.response import Response
from tests.helpers import example

from ._helpers import API, TOKEN, all_sent, request_count, sent, sent_all

MODELS = f"{API}/models"
PREDS = f"{API}/predictions"


def _model(i: int) -> dict[str, Any]:
    return {"owner": "o", "name": f"m{i}"}


def _page(results: list[Any], next: str | None) -> dict[str, Any]:
    return {"next": next, "previous": None, "results": results}


async def _walk(paginator: AsyncPaginator[Any], into: list[str]) -> None:
    """Walk every item, recording names as they arrive (so a later error keeps them)."""
    async for item in paginator:
        into.append(item.name)


def _three_pages(mocked: aioresponses) -> None:
    mocked.get(MODELS, payload=_page([_model(1), _model(2)], f"{MODELS}?cursor=c2"))
    mocked.get(f"{MODELS}?cursor=c2", payload=_page([_model(3), _model(4)], f"{MODELS}?cursor=c3"))
    mocked.get(f"{MODELS}?cursor=c3", payload=_page([_model(5)], None))


async def test_list_returns_paginator_without_request(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """Calling list() sends nothing; the paginator is lazy."""
    paginator = client.models.list()
    assert isinstance(paginator, AsyncPaginator)
    assert request_count(mocked) == 0


async def test_iterate_all_items_across_pages(client: AsyncReplicate, mocked: aioresponses) -> None:
    """`async for` walks every item of every page in order, one request per page."""
    _three_pages(mocked)
    names = [m.name async for m in client.models.list()]
    assert names == ["m1", "m2", "m3", "m4", "m5"]
    assert all_sent(mocked) == [
        ("GET", MODELS),
        ("GET", f"{MODELS}?cursor=c2"),
        ("GET", f"{MODELS}?cursor=c3"),
    ]


async def test_first_item_fetches_one_page(client: AsyncReplicate, mocked: aioresponses) -> None:
    """Taking one item of a three-page list sends only the first request."""
    _three_pages(mocked)
    iterator = aiter(client.models.list())
    first = await anext(iterator)
    assert first.name == "m1"
    assert request_count(mocked) == 1
    second = await anext(iterator)
    assert second.name == "m2"
    assert request_count(mocked) == 1
    third = await anext(iterator)
    assert third.name == "m3"
    assert request_count(mocked) == 2


async def test_break_early_stops_fetching(client: AsyncReplicate, mocked: aioresponses) -> None:
    """Breaking out of the loop after page one sends no further requests."""
    _three_pages(mocked)
    seen: list[str] = []
    async for model in client.models.list():
        seen.append(model.name)
        if len(seen) == 2:
            break
    assert seen == ["m1", "m2"]
    assert request_count(mocked) == 1


async def test_await_gives_first_page(client: AsyncReplicate, mocked: aioresponses) -> None:
    """`await paginator` fetches just the first Page."""
    _three_pages(mocked)
    page = await client.models.list()
    assert isinstance(page, Page)
    assert [m.name for m in page.results] == ["m1", "m2"]
    assert page.next == f"{MODELS}?cursor=c2"
    assert request_count(mocked) == 1


async def test_pages_iterates_page_by_page(client: AsyncReplicate, mocked: aioresponses) -> None:
    """`.pages()` yields Page objects and fetches lazily."""
    _three_pages(mocked)
    sizes = []
    async for page in client.models.list().pages():
        sizes.append(len(page))
        assert request_count(mocked) == len(sizes)
    assert sizes == [2, 2, 1]


async def test_collect_all_and_limit(client: AsyncReplicate, mocked: aioresponses) -> None:
    """collect() gathers everything; collect(limit=3) stops after the page holding item 3."""
    _three_pages(mocked)
    items = await client.models.list().collect(limit=3)
    assert [m.name for m in items] == ["m1", "m2", "m3"]
    assert request_count(mocked) == 2


async def test_collect_everything(client: AsyncReplicate, mocked: aioresponses) -> None:
    """collect() without a limit returns all items as a list."""
    _three_pages(mocked)
    items = await client.models.list().collect()
    assert [m.name for m in items] == ["m1", "m2", "m3", "m4", "m5"]
    assert all(isinstance(m, Model) for m in items)


async def test_collect_limit_zero_sends_nothing(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """collect(limit=0) returns [] without a request; a negative limit is a ValueError."""
    assert await client.models.list().collect(limit=0) == []
    with pytest.raises(ValueError):
        await client.models.list().collect(limit=-1)
    assert request_count(mocked) == 0


async def test_resume_from_next_url(client: AsyncReplicate, mocked: aioresponses) -> None:
    """cursor=page.next (absolute URL) resumes the walk at that page."""
    _three_pages(mocked)
    first = await client.models.list()
    assert first.next is not None
    rest = [m.name async for m in client.models.list(cursor=first.next)]
    assert rest == ["m3", "m4", "m5"]
    assert len(sent_all(mocked, "GET", MODELS)) == 1
    request = sent(mocked, "GET", f"{MODELS}?cursor=c2")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_resume_from_raw_cursor(client: AsyncReplicate, mocked: aioresponses) -> None:
    """A raw cursor string is sent as ?cursor= on the list's own URL, with its filters."""
    url = f"{MODELS}?cursor=cD0yMDIz&sort_by=model_created_at"
    mocked.get(url, payload=_page([_model(9)], None))
    page = await client.models.list(sort_by="model_created_at", cursor="cD0yMDIz")
    assert [m.name for m in page.results] == ["m9"]
    assert sent(mocked, "GET", url).query == {"cursor": "cD0yMDIz", "sort_by": "model_created_at"}


async def test_raw_cursor_with_slash_is_not_a_url(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A base64 cursor may contain '/' and '+': it is still a cursor, percent-encoded."""
    url = f"{MODELS}?cursor=cD0y/MDIz%2Bab%3D%3D"
    mocked.get(url, payload=_page([_model(1)], None))
    page = await client.models.list(cursor="cD0y/MDIz+ab==")
    assert len(page) == 1
    assert sent(mocked, "GET", url).query == {"cursor": "cD0y/MDIz+ab=="}


@pytest.mark.parametrize("cursor", ["", "null"])
async def test_bad_cursor_rejected(
    client: AsyncReplicate, mocked: aioresponses, cursor: str
) -> None:
    """An empty or 'null' cursor is a ValueError at call time."""
    with pytest.raises(ValueError):
        client.models.list(cursor=cursor)
    assert request_count(mocked) == 0


async def test_filters_kept_on_next_pages(client: AsyncReplicate, mocked: aioresponses) -> None:
    """predictions.list(created_after=...) keeps the filter on every following page."""
    after = "2024-01-01T00:00:00Z"
    body = example("page-predictions-list-spec-example")
    mocked.get(f"{PREDS}?created_after={after}", payload={**body, "next": f"{PREDS}?cursor=p2"})
    mocked.get(f"{PREDS}?cursor=p2&created_after={after}", payload=body)
    items = [p async for p in client.predictions.list(created_after=after)]
    assert len(items) == 2
    assert all(isinstance(p, Prediction) for p in items)
    second = sent(mocked, "GET", f"{PREDS}?cursor=p2&created_after={after}")
    assert second.query == {"cursor": "p2", "created_after": after}


async def test_filters_not_duplicated_when_link_has_them(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A next link that already carries the filter is followed as given."""
    after = "2024-01-01T00:00:00Z"
    body = example("page-predictions-list-spec-example")
    nxt = f"{PREDS}?created_after=2023-06-01T00:00:00Z&cursor=p2"
    mocked.get(f"{PREDS}?created_after={after}", payload={**body, "next": nxt})
    mocked.get(nxt, payload=body)
    await client.predictions.list(created_after=after).collect()
    assert sent(mocked, "GET", nxt).query == {
        "created_after": "2023-06-01T00:00:00Z",
        "cursor": "p2",
    }


async def test_resume_url_keeps_filters(client: AsyncReplicate, mocked: aioresponses) -> None:
    """Resuming with cursor=<next URL> re-adds the caller's filters."""
    url = f"{PREDS}?cursor=p2&source=web"
    mocked.get(url, payload=example("page-predictions-list-spec-example"))
    await client.predictions.list(source="web", cursor=f"{PREDS}?cursor=p2")
    assert sent(mocked, "GET", url).query == {"cursor": "p2", "source": "web"}


async def test_absolute_next_followed_as_given(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """The real absolute next link is requested verbatim."""
    body = example("page-models-list-TRUNCATED")
    nxt = body["next"]
    mocked.get(MODELS, payload=body)
    mocked.get(nxt, payload=_page([], None))
    pages = [p async for p in client.models.list().pages()]
    assert len(pages) == 2
    request = sent(mocked, "GET", nxt)
    assert request.query == {"cursor": "cD0yMDIzLTExLTE1KzA1JTNBMDMlM0E0Ny4yMDM5MDMlMkIwMCUzQTAw"}


async def test_relative_next_resolved_against_api(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A relative next (/v1/models?cursor=x) is resolved against the API origin."""
    mocked.get(MODELS, payload=_page([_model(1)], "/v1/models?cursor=x"))
    mocked.get(f"{MODELS}?cursor=x", payload=_page([_model(2)], None))
    names = [m.name async for m in client.models.list()]
    assert names == ["m1", "m2"]
    assert sent(mocked, "GET", f"{MODELS}?cursor=x").headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("end", [None, "null", ""])
async def test_end_of_list_markers(
    client: AsyncReplicate, mocked: aioresponses, end: str | None
) -> None:
    """next = null, the string "null" (spec slip) or "" ends the walk."""
    mocked.get(f"{API}/collections", payload={**example("page-collections-list"), "next": end})
    items = [c async for c in client.collections.list()]
    assert len(items) == len(example("page-collections-list")["results"])
    assert request_count(mocked) == 1


async def test_http_next_on_api_host_upgraded(client: AsyncReplicate, mocked: aioresponses) -> None:
    """An http:// next on the API host (deployments spec slip) is fetched over https."""
    body = example("page-deployments-list")
    assert body["next"].startswith("http://api.replicate.com/")
    secure = "https://" + body["next"].removeprefix("http://")
    mocked.get(f"{API}/deployments", payload=body)
    mocked.get(secure, payload=_page([], None))
    pages = [p async for p in client.deployments.list().pages()]
    assert len(pages) == 2
    sent(mocked, "GET", secure)
    assert not sent_all(mocked, "GET", body["next"])


async def test_resume_with_http_next_is_upgraded(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """cursor=<http:// next> on the API host is also upgraded to https."""
    nxt = example("page-deployments-list")["next"]
    secure = "https://" + nxt.removeprefix("http://")
    mocked.get(secure, payload=_page([], None))
    await client.deployments.list(cursor=nxt)
    sent(mocked, "GET", secure)


@pytest.mark.parametrize(
    "foreign",
    [
        "https://evil.example.com/v1/models?cursor=c2",
        "https://api.replicate.com.evil.example/v1/models?cursor=c2",
        "https://api.replicate.com:8443/v1/models?cursor=c2",
        "//evil.example.com/v1/models?cursor=c2",
    ],
)
async def test_foreign_next_refused(
    client: AsyncReplicate, mocked: aioresponses, foreign: str
) -> None:
    """A next link to another host raises PaginationError; nothing is sent there."""
    mocked.get(MODELS, payload=_page([_model(1)], foreign))
    seen: list[str] = []
    with pytest.raises(PaginationError) as info:
        await _walk(client.models.list(), seen)
    assert seen == ["m1"]
    assert all_sent(mocked) == [("GET", MODELS)]
    assert TOKEN not in str(info.value)


async def test_foreign_cursor_refused_at_call(client: AsyncReplicate, mocked: aioresponses) -> None:
    """cursor=<URL on another host> is refused before any request."""
    with pytest.raises(PaginationError):
        client.models.list(cursor="https://evil.example.com/v1/models?cursor=c2")
    assert request_count(mocked) == 0


async def test_loop_detected(client: AsyncReplicate, mocked: aioresponses) -> None:
    """A next link equal to an already visited page raises PaginationError."""
    mocked.get(MODELS, payload=_page([_model(1)], f"{MODELS}?cursor=c2"))
    mocked.get(f"{MODELS}?cursor=c2", payload=_page([_model(2)], f"{MODELS}?cursor=c2"))
    names: list[str] = []
    with pytest.raises(PaginationError, match="already visited"):
        await _walk(client.models.list(), names)
    assert names == ["m1", "m2"]
    assert request_count(mocked) == 2


async def test_loop_back_to_first_page_detected(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A next link pointing back at the first page is a loop too."""
    mocked.get(MODELS, payload=_page([_model(1)], MODELS))
    with pytest.raises(PaginationError):
        await client.models.list().collect()
    assert request_count(mocked) == 1


async def test_query_search_pagination_keeps_method_and_body(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """models.search follows next with QUERY, the same text body and Content-Type."""
    mocked.add(MODELS, method="QUERY", payload=_page([_model(1)], f"{MODELS}?cursor=s2"))
    mocked.add(f"{MODELS}?cursor=s2", method="QUERY", payload=_page([_model(2)], None))
    names = [m.name async for m in client.models.search("flux")]
    assert names == ["m1", "m2"]
    second = sent(mocked, "QUERY", f"{MODELS}?cursor=s2")
    assert second.body == b"flux"
    assert second.headers["Content-Type"] == "text/plain"
    assert not mocked.requests.get(("GET", MODELS))


async def test_search_resume_with_cursor(client: AsyncReplicate, mocked: aioresponses) -> None:
    """models.search(cursor=...) resumes with QUERY and the query body."""
    mocked.add(f"{MODELS}?cursor=s2", method="QUERY", payload=_page([_model(2)], None))
    page = await client.models.search("flux", cursor=f"{MODELS}?cursor=s2")
    assert len(page) == 1
    assert sent(mocked, "QUERY", f"{MODELS}?cursor=s2").body == b"flux"


async def test_error_on_second_page_propagates(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A failing later page raises its typed error after the earlier items were yielded."""
    from replicate_async import NotFoundError

    mocked.get(MODELS, payload=_page([_model(1)], f"{MODELS}?cursor=gone"))
    mocked.get(f"{MODELS}?cursor=gone", status=404, payload={"detail": "gone"})
    names: list[str] = []
    with pytest.raises(NotFoundError):
        await _walk(client.models.list(), names)
    assert names == ["m1"]


async def test_paginator_can_be_walked_twice(client: AsyncReplicate, mocked: aioresponses) -> None:
    """Each iteration starts over from the first page."""
    mocked.get(MODELS, payload=_page([_model(1)], None), repeat=True)
    paginator = client.models.list()
    assert [m.name async for m in paginator] == ["m1"]
    assert [m.name async for m in paginator] == ["m1"]
    assert len(sent_all(mocked, "GET", MODELS)) == 2


async def test_custom_base_url_pagination(mocked: aioresponses, clock: Any) -> None:
    """With a custom base URL, next links on that origin are followed, others refused."""
    base = "http://127.0.0.1:8123/v1"
    mocked.get(f"{base}/models", payload=_page([_model(1)], f"{base}/models?cursor=2"))
    mocked.get(f"{base}/models?cursor=2", payload=_page([_model(2)], f"{API}/models?cursor=3"))
    async with AsyncReplicate(api_token=TOKEN, base_url=base) as client:
        names: list[str] = []
        with pytest.raises(PaginationError):
            await _walk(client.models.list(), names)
    assert names == ["m1", "m2"]
    assert request_count(mocked) == 2


async def test_relative_next_without_version_prefix_stays_under_base(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A ``/collections?cursor=x`` link (no ``/v1``) is resolved under the base path."""
    mocked.get(f"{API}/collections", payload={"results": [], "next": "/collections?cursor=x"})
    mocked.get(f"{API}/collections?cursor=x", payload={"results": [], "next": None})
    pages = [page async for page in client.collections.list().pages()]
    assert len(pages) == 2
    assert ("GET", URL(f"{API}/collections?cursor=x")) in mocked.requests


# -- big, live-shaped pages --------------------------------------------------------------------


def _live_page(count: int, next: str | None = None) -> dict[str, Any]:
    """``count`` live-shaped models (the recorded sdxl model: version, schema, example)."""
    model = example("model-get-sdxl")
    return _page([{**model, "name": f"m{i}"} for i in range(count)], next)


async def test_live_shaped_pages_build_every_nested_object(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """Each model of a live-shaped page comes with its typed example and version, and its
    ``raw`` is the very object received."""
    body = _live_page(3)
    mocked.get(MODELS, payload=body)
    models = [model async for model in client.models.list()]
    assert [m.name for m in models] == ["m0", "m1", "m2"]
    for model in models:
        assert isinstance(model.default_example, Prediction)
        assert model.default_example.created_at is not None
        assert model.latest_version is not None
        assert model.latest_version.openapi_schema is not None
    assert models[1].raw["name"] == "m1"
    assert models[1].latest_version.raw == body["results"][1]["latest_version"]


async def test_a_malformed_nested_object_fails_the_page(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A bad timestamp deep in one model fails the page's fetch, naming the field."""
    body = _live_page(2)
    body["results"][1]["default_example"]["created_at"] = 17
    mocked.get(MODELS, payload=body)
    with pytest.raises(APIResponseValidationError, match=r"Prediction\.created_at"):
        await client.models.list()


async def test_a_walk_holds_one_page_at_a_time(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """The previous page (and its objects) is gone before the next is fetched and built;
    ``last_response`` is the latest page again once it has arrived."""
    first_page: list[weakref.ref[Page[Model]]] = []
    alive_while_fetching: list[bool] = []

    def second(url: URL, **kwargs: Any) -> CallbackResult:
        alive_while_fetching.append(first_page[0]() is not None)
        return CallbackResult(payload=_page([_model(2)], None))

    mocked.get(MODELS, payload=_page([_model(0), _model(1)], f"{MODELS}?cursor=c2"))
    mocked.get(f"{MODELS}?cursor=c2", callback=second)
    paginator = client.models.list()
    names = []
    async for model in paginator:
        if not first_page:
            assert paginator.last_response is not None
            first_page.append(weakref.ref(paginator.last_response.parse()))
        names.append(model.name)
    assert names == ["m0", "m1", "m2"]
    assert alive_while_fetching == [False]
    assert paginator.last_response is not None
    assert [m.name for m in paginator.last_response.parse().results] == ["m2"]


async def test_callbacks_scheduled_during_a_walk_keep_no_page_alive(
    client: AsyncReplicate, mocked: aioresponses
) -> None:
    """A loop callback made while a page is fetched (aiohttp's timeout timers, which the loop
    keeps for minutes after they are cancelled) holds the context of that moment: it must
    not keep the page's response, and its body, alive once the walk has moved on."""
    contexts: list[contextvars.Context] = []
    bodies = {
        MODELS: _page([_model(1)], f"{MODELS}?cursor=c2"),
        f"{MODELS}?cursor=c2": _page([_model(2)], None),
    }

    def answer(url: URL, **kwargs: Any) -> CallbackResult:
        contexts.append(contextvars.copy_context())  # what loop.call_later captures
        return CallbackResult(payload=bodies[str(url)])

    for url in bodies:
        mocked.get(url, callback=answer)
    assert [m.name async for m in client.models.list()] == ["m1", "m2"]
    paginator = client.models.list()
    mocked.get(MODELS, callback=answer)
    await paginator  # one page, with its last_response
    assert paginator.last_response is not None

    def responses(value: object) -> int:
        if isinstance(value, Response):
            return 1
        if isinstance(value, list | tuple):
            return sum(responses(item) for item in value)
        return 0

    assert len(contexts) == 3
    assert [sum(responses(v) for v in ctx.values()) for ctx in contexts] == [0, 0, 0]
