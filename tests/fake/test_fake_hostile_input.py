"""No input gets a 5xx out of the fake, nothing is stored on rejection, and the server
answers normally afterwards. Hypothesis throws arbitrary JSON values (lone surrogates,
NaN, deep nesting), headers, path segments and multipart parts at every endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replicate_async.testing import FakeReplicate

from ._threaded import ThreadedFake

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text with lone surrogates, controls and astral characters mixed in.
TEXT = st.text(st.characters(exclude_categories=()), max_size=12) | st.sampled_from(
    ["\ud800", "a\udfffb", "\x00", "\U0001f600", "", "fake/echo"]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
FIELDS = [
    "version", "input", "webhook", "webhook_events_filter", "stream", "owner", "name",
    "visibility", "hardware", "description", "github_url", "paper_url", "license_url",
    "cover_image_url", "readme", "weights_url", "model", "min_instances", "max_instances",
    "destination",
]  # fmt: skip
BODIES = st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=6) | JSON_VALUES
HEADER_NAMES = st.sampled_from(
    ["Prefer", "Cancel-After", "Content-Type", "Content-Encoding", "X-Anything", "Last-Event-ID"]
)
HEADER_VALUES = st.binary(max_size=24).filter(lambda b: b"\r" not in b and b"\n" not in b) | (
    st.sampled_from([b"wait", b"wait=5", b"1000000000000s", b"99999999h", b"5m", b"gzip"])
)


def counts(fake: FakeReplicate) -> tuple[int, ...]:
    store = fake._ctx.store
    return tuple(
        len(x)
        for x in (
            store.predictions,
            store.trainings,
            store.files,
            store.models,
            store.versions,
            store.deployments,
        )
    )


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedFake]:
    with ThreadedFake(seed=7, body_timeout=0.5) as threaded:
        yield threaded


def _routes(server: ThreadedFake) -> list[tuple[str, str]]:
    assert server.fake is not None
    fake = server.fake
    status, _, body = server.request(
        "POST", "/v1/predictions", json.dumps({"version": "fake/echo", "input": {}}).encode()
    )
    assert status == 201
    values = {
        "owner": "fake",
        "name": "echo",
        "version_id": fake.latest_version_id("fake/echo"),
        "id": json.loads(body)["id"],
        "file_id": "nope",
        "slug": next(iter(fake._ctx.store.collections)),
    }
    out = []
    for route in fake.app.router.routes():
        template = route.resource.canonical if route.resource is not None else ""
        if route.method in ("HEAD", "*") or not template:
            continue
        out.append((route.method, template.format(**values)))
    return out


def check(server: ThreadedFake, method: str, path: str, body: bytes, headers: Any) -> int:
    assert server.fake is not None
    fake = server.fake
    before = server.call(lambda: counts(fake))
    status, content_type, answer = server.request(method, path, body, headers)
    assert status < 500, (method, path, status, answer[:200])
    if status >= 400:
        # /v1/search answers its own errors in plain application/json, as the real API does.
        expected = ("application/problem+json", "application/json")
        if not path.startswith("/v1/search"):
            expected = expected[:1]
        assert content_type.startswith(expected), (method, path, status, content_type)
        assert "detail" in json.loads(answer)
        assert server.call(lambda: counts(fake)) == before, (method, path, status)
    return status


def still_healthy(server: ThreadedFake) -> None:
    assert server.fake is not None
    assert server.request("GET", "/v1/account")[0] == 200
    assert server.request("GET", "/v1/predictions")[0] == 200
    assert server.request("GET", "/v1/files")[0] == 200
    assert server.fake.server_errors == []


@SETTINGS
@given(data=st.data())
def test_arbitrary_json_bodies_and_headers_at_every_endpoint(
    server: ThreadedFake, data: st.DataObject
) -> None:
    routes = _routes(server)
    method, path = data.draw(st.sampled_from(routes))
    value = data.draw(BODIES)
    body = json.dumps(value, allow_nan=True).encode()
    headers = data.draw(st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3))
    headers.setdefault("Content-Type", b"application/json")
    check(server, method, path, body, headers)
    still_healthy(server)


@SETTINGS
@given(data=st.data())
def test_arbitrary_path_segments_and_queries(server: ThreadedFake, data: st.DataObject) -> None:
    routes = _routes(server)
    method, path = data.draw(st.sampled_from(routes))
    segments = path.split("/")
    index = data.draw(st.integers(min_value=2, max_value=len(segments) - 1))
    text = data.draw(TEXT)
    segments[index] = quote(text.encode("utf-8", "surrogatepass"), safe="") or "x"
    query = "&".join(
        f"{name}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
        for name, v in data.draw(
            st.dictionaries(
                st.sampled_from(["cursor", "source", "created_after", "sort_by", "query"]), TEXT
            )
        ).items()
    )
    check(server, method, "/".join(segments) + (f"?{query}" if query else ""), b"", {})
    still_healthy(server)


def multipart(parts: list[tuple[bytes, bytes | None, bytes | None, bytes]]) -> bytes:
    out = []
    for name, filename, ctype, payload in parts:
        disposition = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        head = [b"--BOUNDARY", disposition]
        if ctype is not None:
            head.append(b"Content-Type: " + ctype)
        out.append(b"\r\n".join(head) + b"\r\n\r\n" + payload + b"\r\n")
    return b"".join(out) + b"--BOUNDARY--\r\n"


SAFE_BYTES = st.binary(max_size=16).filter(lambda b: not set(b) & set(b'"\r\n'))
PARTS = st.lists(
    st.tuples(
        st.sampled_from([b"content", b"filename", b"type", b"metadata", b"other"]),
        st.none() | SAFE_BYTES,
        st.none() | SAFE_BYTES,
        st.binary(max_size=32) | st.sampled_from([b"\xff\xfe", b'{"a": NaN}', b'"\\ud800"']),
    ),
    max_size=5,
)


@SETTINGS
@given(parts=PARTS)
def test_arbitrary_multipart_uploads(
    server: ThreadedFake, parts: list[tuple[bytes, bytes | None, bytes | None, bytes]]
) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=BOUNDARY"}
    status = check(server, "POST", "/v1/files", multipart(parts), headers)
    assert status in (201, 400, 413, 422)
    still_healthy(server)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/predictions", {"version": "fake/echo", "input": {"text": "\ud800"}}),
        ("/v1/predictions", {"version": "fake/echo", "input": {}, "webhook": "http://x/\udfff"}),
        ("/v1/predictions", {"version": "fake/echo", "input": {"\ud800": 1}}),
        ("/v1/predictions", {"version": "fake/echo", "input": {"n": float("nan")}}),
        ("/v1/predictions", {"version": "fake/echo", "input": {"n": float("inf")}}),
        ("/v1/models", {"owner": "alice", "name": "m", "visibility": "private",
                        "hardware": "cpu", "description": "\ud800"}),
    ],
)  # fmt: skip
def test_unstorable_json_is_a_400(server: ThreadedFake, path: str, body: Any) -> None:
    status = check(server, "POST", path, json.dumps(body, allow_nan=True).encode(), {})
    assert status == 400
    still_healthy(server)


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
def test_deep_nesting_is_a_400(server: ThreadedFake, depth: int) -> None:
    inner = "[" * depth + "]" * depth
    body = f'{{"version": "fake/echo", "input": {{"x": {inner}}}}}'.encode()
    assert check(server, "POST", "/v1/predictions", body, {}) == 400


@pytest.mark.parametrize(
    "value", ["1000000000000s", "86401", "25h", "9" * 5000 + "s", "\u0661\u0660s", "3s", "soon"]
)
def test_bad_or_huge_cancel_after_is_a_400(server: ThreadedFake, value: str) -> None:
    body = json.dumps({"version": "fake/echo", "input": {}}).encode()
    headers = {"Cancel-After": value.encode("utf-8")}
    assert check(server, "POST", "/v1/predictions", body, headers) == 400


def test_a_day_of_cancel_after_is_accepted(server: ThreadedFake) -> None:
    body = json.dumps({"version": "fake/echo", "input": {}}).encode()
    assert check(server, "POST", "/v1/predictions", body, {"Cancel-After": "24h"}) == 201


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/collections"), ("GET", "/v1/models?sort_direction=asc"), ("QUERY", "/v1/models")],
)
def test_a_cursor_past_the_end_is_an_empty_page(
    server: ThreadedFake, method: str, path: str
) -> None:
    from replicate_async.testing._pagination import Cursor, encode_cursor

    sep = "&" if "?" in path else "?"
    for cursor in (Cursor(10**30), Cursor(10**30, reverse=True), Cursor(-5)):
        target = f"{path}{sep}cursor={encode_cursor(cursor)}"
        status, _, body = server.request(method, target, b"flux")
        assert status == 200, body
        assert isinstance(json.loads(body)["results"], list)


def test_a_non_ascii_download_signature_is_a_404(server: ThreadedFake) -> None:
    assert server.fake is not None
    headers = {"Content-Type": "multipart/form-data; boundary=BOUNDARY"}
    _status, _, body = server.request(
        "POST", "/v1/files", multipart([(b"content", b"a.txt", None, b"hi")]), headers
    )
    file_id = json.loads(body)["id"]
    params = server.fake.signed_download_params(file_id)
    query = f"owner=alice&expiry={params['expiry']}&signature=%C3%A9%ED%A0%80"
    assert check(server, "GET", f"/v1/files/{file_id}/download?{query}", b"", {}) == 404
