"""Requests broken below JSON: malformed header lines, lines over 8190 bytes, a body that
never arrives, a broken gzip body. Each gets a problem+json 4xx that echoes nothing it
was sent, is logged, and leaves the server answering."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest

from ._threaded import ThreadedFake

SECRET = "r8_do_not_echo_me"


@pytest.fixture
def server() -> Iterator[ThreadedFake]:
    with ThreadedFake(body_timeout=0.3) as threaded:
        yield threaded


def split(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def answered_normally(server: ThreadedFake) -> None:
    assert server.fake is not None
    assert server.request("GET", "/v1/account")[0] == 200
    assert server.fake.server_errors == []


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (f"Authorization: Bearer {SECRET}\x01".encode(), 400),
        (b"X-Bad\x7f: value", 400),
        (f"X-Long: {SECRET}{'a' * 9000}".encode(), 413),
    ],
)
def test_parser_errors_are_problems_that_echo_nothing(
    server: ThreadedFake, header: bytes, status: int
) -> None:
    assert server.fake is not None
    request = b"GET /v1/account HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n"
    got, headers, body = split(server.raw(request))
    assert got == status
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["status"] == status
    assert problem["detail"]
    assert SECRET.encode() not in body
    assert b"X-" not in body
    rejected = [r for r in server.fake.requests if r.rejected]
    assert [(r.status, r.method, r.path) for r in rejected] == [(status, "", "")]
    answered_normally(server)


def test_a_body_shorter_than_its_content_length_times_out_as_a_408(
    server: ThreadedFake,
) -> None:
    assert server.fake is not None
    before = len(server.fake.predictions)
    request = (
        b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {server.fake.token}\r\n".encode()
        + b"Content-Length: 5000000\r\n\r\n"
        + b'{"version": "fake/echo"'
    )
    status, headers, body = split(server.raw(request))
    assert status == 408
    assert headers["content-type"].startswith("application/problem+json")
    assert json.loads(body)["detail"] == "The request body did not arrive in time"
    (logged,) = server.fake.requests_matching("POST", "/v1/predictions")
    assert (logged.status, logged.rejected) == (408, "The request body did not arrive in time")
    assert len(server.fake.predictions) == before
    answered_normally(server)


def post_gzipped(server: ThreadedFake, body: bytes) -> tuple[int, str, bytes]:
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    return server.request("POST", "/v1/predictions", body, headers)


def test_a_broken_gzip_body_is_a_400_and_is_logged(server: ThreadedFake) -> None:
    assert server.fake is not None
    before = len(server.fake.predictions)
    status, content_type, answer = post_gzipped(server, b"this is not gzip")
    assert status == 400
    assert content_type.startswith("application/problem+json")
    assert "Content-Encoding" in json.loads(answer)["detail"]
    (logged,) = server.fake.requests_matching("POST", "/v1/predictions")
    assert logged.status == 400
    assert logged.rejected
    assert len(server.fake.predictions) == before
    answered_normally(server)


def test_a_good_gzip_body_is_accepted(server: ThreadedFake) -> None:
    body = gzip.compress(json.dumps({"version": "fake/echo", "input": {"a": 1}}).encode())
    status, _, answer = post_gzipped(server, body)
    assert status == 201
    assert json.loads(answer)["input"] == {"a": 1}


def test_a_body_over_the_limit_is_a_413_before_it_is_read() -> None:
    with ThreadedFake(max_file_size=1024) as server:
        assert server.fake is not None
        status, _, answer = server.request(
            "POST", "/v1/files", b"x" * (4 * 1024 * 1024), {"Content-Type": "text/plain"}
        )
        assert status == 413
        assert json.loads(answer)["detail"] == "Files must be less than 1049600 bytes in size"
        assert server.fake.requests[-1].status == 413
        assert server.fake.files == {}
