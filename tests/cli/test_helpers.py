"""The small pure pieces: input parsing, --jq, file names, error lines, cells, widths."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest

from replicate_async import (
    APIConnectionError,
    NotFoundError,
    RateLimitError,
    UnprocessableEntityError,
)
from replicate_async.cli._errors import describe_error, not_found_subject
from replicate_async.cli._inputs import FileArg, resolve_inputs
from replicate_async.cli._jq import JqError, compile_filter
from replicate_async.cli._output import Column, cell, fit_widths
from replicate_async.cli._params import Text, parse_inputs
from replicate_async.cli._runtime import ArgumentError
from replicate_async.cli._saver import output_filename
from replicate_async.cli._trace import redact_headers
from replicate_async.cli.api import api_path

SCHEMA = {
    "components": {
        "schemas": {
            "Input": {
                "type": "object",
                "properties": {
                    "text": {"type": "string"},
                    "steps": {"type": "integer"},
                    "scale": {"type": "number"},
                    "go": {"type": "boolean"},
                    "notes": {"type": "string"},
                    "image": {"type": "string", "format": "uri"},
                    "max_tokens": {"type": "integer"},
                },
            }
        }
    }
}


def test_key_equals_text_is_always_a_string_without_a_schema() -> None:
    parsed = parse_inputs(["text=1984", "n=42", "f=0.5", "b=true", "l=[1]", "q=a=b", "e="])
    assert all(type(v) is Text for v in parsed.values())
    assert resolve_inputs(parsed) == {
        "text": "1984", "n": "42", "f": "0.5", "b": "true", "l": "[1]", "q": "a=b", "e": "",
    }  # fmt: skip
    assert all(type(v) is str for v in resolve_inputs(parsed).values())


def test_key_colon_equals_is_raw_json() -> None:
    parsed = parse_inputs(["n:=42", "f:=0.5", 'l:=[1, "x"]', 'd:={"a": null}', 's:="42"'])
    assert parsed == {"n": 42, "f": 0.5, "l": [1, "x"], "d": {"a": None}, "s": "42"}
    with pytest.raises(click.BadParameter, match="not valid JSON"):
        parse_inputs(["x:={oops"])


def test_the_schema_types_key_equals_text() -> None:
    parsed = parse_inputs(["text=1984", "steps=20", "scale=7.5", "go=yes"])
    assert resolve_inputs(parsed, SCHEMA) == {"text": "1984", "steps": 20, "scale": 7.5, "go": True}


def test_unknown_input_names_are_refused_with_the_closest_known_one() -> None:
    with pytest.raises(
        ArgumentError, match=r"no input 'max_token' \(did you mean 'max_tokens'\?\)"
    ):
        resolve_inputs({"max_token": 3, "text": "x"}, SCHEMA)
    with pytest.raises(ArgumentError, match=r"no inputs 'zzz', 'max_token' \(did"):
        resolve_inputs(parse_inputs(["zzz=1", "max_token=3"]), SCHEMA)
    allowing = {"components": {"schemas": {"Input": {"additionalProperties": True}}}}
    assert resolve_inputs({"any": 1}, allowing) == {"any": 1}


def test_a_file_follows_the_schema_text_for_strings_the_file_for_uris(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("héllo\n")
    files = {"notes": FileArg(path=path), "image": FileArg(path=path)}
    assert resolve_inputs(files, SCHEMA) == {"notes": "héllo\n", "image": path}
    stdin = {"notes": FileArg(data=b"typed"), "image": FileArg(data=b"typed")}
    assert resolve_inputs(stdin, SCHEMA) == {"notes": "typed", "image": b"typed"}
    with pytest.raises(ArgumentError, match="'notes' takes text, and standard input is not"):
        resolve_inputs({"notes": FileArg(data=b"\xff")}, SCHEMA)
    assert resolve_inputs(stdin) == {"notes": "typed", "image": "typed"}  # no schema: text


def test_files_stdin_and_the_input_json_base(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\0")
    assert parse_inputs([f"f=@{path}", "at=@@handle"]) == {"f": FileArg(path), "at": "@handle"}
    with pytest.raises(click.BadParameter, match="no such file"):
        parse_inputs([f"f=@{tmp_path / 'missing'}"])
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"from stdin\n")))
    assert resolve_inputs(parse_inputs(["prompt=@-"])) == {"prompt": "from stdin\n"}
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe")))
    assert resolve_inputs(parse_inputs(["image=@-"])) == {"image": b"\xff\xfe"}
    assert parse_inputs(["a=2"], {"a": 1, "b": 1}) == {"a": "2", "b": 1}
    for bad in ("=1", "no-equals", ":=1"):
        with pytest.raises(click.BadParameter):
            parse_inputs([bad])


@pytest.mark.parametrize(
    ("expression", "results"),
    [
        (".", [{"id": "p1", "urls": {"web": "w"}, "output": ["a", "b"]}]),
        (".id", ["p1"]),
        (".urls.web", ["w"]),
        (".output[]", ["a", "b"]),
        (".output[0]", ["a"]),
        (".output.1", ["b"]),
        (".output[-1]", ["b"]),
        (".output[5]", [None]),
        (".missing.deeper", [None]),
        (".id,.urls.web", ["p1", "w"]),
        (".urls[]", ["w"]),
    ],
)
def test_jq_paths(expression: str, results: list[Any]) -> None:
    value = {"id": "p1", "urls": {"web": "w"}, "output": ["a", "b"]}
    assert list(compile_filter(expression)(value)) == results


def test_jq_errors() -> None:
    for bad in ("id", ".a b", ".[x]"):
        with pytest.raises(JqError):
            compile_filter(bad)
    with pytest.raises(JqError, match=r"cannot take \.x of a string"):
        list(compile_filter(".id.x")({"id": "p"}))
    with pytest.raises(JqError, match=r"cannot index an object with \[0\]"):
        list(compile_filter(".[0]")({"id": "p"}))


def test_jq_filters_of_any_length_and_indexes_of_any_size() -> None:
    deep: Any = "leaf"
    for _ in range(5000):
        deep = {"a": deep}
    assert list(compile_filter(".a" * 5000)(deep)) == ["leaf"]
    assert list(compile_filter(f".[{'9' * 5000}]")(["x"])) == [None]
    assert list(compile_filter(f".[-{'9' * 5000}]")(["x"])) == [None]


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://replicate.delivery/abc/out-0.png", "out-0.png"),
        ("https://replicate.delivery/abc/my%20file.webp?x=1", "my_file.webp"),
        ("https://example.com/", "output-3"),
        ("https://example.com/../..", "output-3"),
        ("data:image/png;base64,AAAA", "output-3.png"),
        ("data:,hello", "output-3.bin"),
    ],
)
def test_output_filename(url: str, name: str) -> None:
    assert output_filename(url, 3) == name


def _status_error(cls: type[Any], status: int, body: Any, url: str = "https://api/x") -> Any:
    message = (body.get("detail") if isinstance(body, dict) else None) or "Not Found"
    return cls(message, method="GET", url=url, status=status, headers={}, body=body)


def test_404_says_what_was_not_found_and_hints_at_v1() -> None:
    base = "https://api.replicate.com/v1"
    missing = _status_error(NotFoundError, 404, {"detail": "Not found."}, f"{base}/predictions/p1")
    assert describe_error(missing, base) == "404 Not Found: prediction p1 was not found"
    specific = _status_error(NotFoundError, 404, {"detail": "Deleted."}, f"{base}/files/f1")
    assert describe_error(specific, base) == "404 Not Found: file f1 was not found (Deleted.)"
    model = _status_error(NotFoundError, 404, {}, f"{base}/models/a/b/versions/v9")
    assert describe_error(model, base) == "404 Not Found: version v9 of model a/b was not found"
    bare = _status_error(NotFoundError, 404, {}, "http://127.0.0.1:9/models/a/b")
    assert describe_error(bare, "http://127.0.0.1:9") == (
        "404 Not Found: model a/b was not found; the base URL http://127.0.0.1:9 has no /v1 "
        "(did you mean http://127.0.0.1:9/v1?)"
    )
    assert not_found_subject(f"{base}/deployments/o/n/predictions") == "deployment o/n"
    assert not_found_subject(f"{base}/collections/x") == "collection x"
    assert not_found_subject(f"{base}/unknown/thing") is None


def test_422_text_is_not_repeated() -> None:
    invalid = _status_error(
        UnprocessableEntityError,
        422,
        {
            "title": "Input validation failed",
            "detail": "- input: prompt is required\n",
            "invalid_fields": [{"field": "input", "description": "prompt is required"}],
        },
    )
    assert describe_error(invalid) == "422 Input validation failed: - input: prompt is required"
    other = _status_error(
        UnprocessableEntityError,
        422,
        {"detail": "bad", "invalid_fields": [{"field": "steps", "description": "too big"}]},
    )
    assert describe_error(other) == "422 Unprocessable Entity: bad (steps: too big)"


def test_other_error_lines() -> None:
    throttled = RateLimitError(
        "x", method="GET", url="u", status=429, headers={}, body="slow", retry_after=3.0
    )
    assert describe_error(throttled) == "429 Too Many Requests: x (retry after 3s)"
    refused = APIConnectionError(
        "could not connect: Cannot connect to host 127.0.0.1:9 ssl:default [Connect call failed]",
        method="GET",
        url="http://127.0.0.1:9/v1/account",
        connect_failed=True,
    )
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert describe_error(refused) == (
        "cannot connect to http://127.0.0.1:9: connection refused (is the base URL right? "
        "--base-url)"
    )
    lost = APIConnectionError("connection reset", method="GET", url="https://api/v1/x")
    assert describe_error(lost) == "lost the connection to https://api: connection reset"


def test_fit_widths_shrinks_only_truncatable_columns() -> None:
    columns: list[Column[Any]] = [
        Column("id", lambda r: r),
        Column("description", lambda r: r, max_width=60),
    ]
    cells = [["a" * 26, "d" * 100]]
    assert fit_widths(columns, cells, None) == [26, 60]
    assert fit_widths(columns, cells, 50) == [26, 50 - 26 - 7]
    assert fit_widths(columns, cells, 10) == [26, 11]  # never below the header


def test_cells_for_people_and_for_pipes(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        moment = datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
        assert cell(moment) == "2026-01-02T03:04:05.123000Z"
        assert cell(moment, human=True) == "2026-01-02 08:34:05"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert cell(512345678) == "512345678"
    assert cell(512345678, human=True) == "512,345,678"
    assert (cell(None), cell(True), cell(True, human=True)) == ("", "true", "yes")
    assert cell({"a": 1}) == '{"a": 1}'
    assert cell("a\tb\nc") == "a b c"


def test_api_paths_and_redaction() -> None:
    base = "https://api.replicate.com/v1/"
    assert api_path("/v1/predictions", base) == "predictions"
    assert api_path("predictions/x", base) == "predictions/x"
    assert api_path("https://elsewhere/x", base) == "https://elsewhere/x"
    headers = {"Authorization": "Bearer r8_secret", "Accept": "application/json"}
    assert redact_headers(headers) == [
        ("Authorization", "Bearer <redacted>"),
        ("Accept", "application/json"),
    ]
