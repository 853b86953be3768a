"""The small pure pieces: input typing, file names, error lines, table widths."""

from __future__ import annotations

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
from replicate_async.cli._output import Column, cell, fit_widths
from replicate_async.cli._params import parse_inputs, parse_value
from replicate_async.cli._runtime import describe_error
from replicate_async.cli.run import output_filename


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("-7", -7),
        ("0", 0),
        ("007", "007"),
        ("3.5", 3.5),
        (".5", 0.5),
        ("1e-3", 0.001),
        ("nan", "nan"),
        ("inf", "inf"),
        ("true", True),
        ("false", False),
        ("True", "True"),
        ("null", "null"),
        ("[1, 2]", [1, 2]),
        ('{"a": [true]}', {"a": [True]}),
        ("a=b", "a=b"),
        ("", ""),
        ("@@me", "@me"),
        ("hello world", "hello world"),
    ],
)
def test_parse_value(text: str, expected: Any) -> None:
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_parse_value_files(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\0")
    assert parse_value(f"@{path}") == path
    with pytest.raises(click.BadParameter, match="no such file"):
        parse_value(f"@{tmp_path / 'missing'}")
    with pytest.raises(click.BadParameter, match="not valid JSON"):
        parse_value("[1,")


def test_parse_inputs_splits_on_the_first_equals() -> None:
    assert parse_inputs(["q=a=b", "n=1", "n=2"]) == {"q": "a=b", "n": 2}
    with pytest.raises(click.BadParameter):
        parse_inputs(["=1"])


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


def _status_error(cls: type[Any], status: int, body: Any, **extra: Any) -> Any:
    return cls("x", method="GET", url="https://api", status=status, headers={}, body=body, **extra)


def test_describe_error() -> None:
    not_found = _status_error(NotFoundError, 404, {"detail": "Nope.", "status": 404})
    assert describe_error(not_found) == "404 Not Found: Nope."
    titled = _status_error(NotFoundError, 404, {"title": "Missing", "detail": "Gone."})
    assert describe_error(titled) == "404 Missing: Gone."
    invalid = _status_error(
        UnprocessableEntityError,
        422,
        {
            "title": "Input validation failed",
            "detail": "- input: prompt is required\n",
            "invalid_fields": [{"field": "input", "description": "prompt is required"}],
        },
    )
    assert describe_error(invalid) == (
        "422 Input validation failed: - input: prompt is required (input: prompt is required)"
    )
    throttled = _status_error(RateLimitError, 429, "slow down", retry_after=3.0)
    assert describe_error(throttled) == "429 Too Many Requests: x (retry after 3s)"
    broken = APIConnectionError("connection reset", method="GET", url="https://api/x")
    assert describe_error(broken) == "connection reset (GET https://api/x)"


def test_fit_widths_shrinks_only_truncatable_columns() -> None:
    columns: list[Column[Any]] = [
        Column("id", lambda r: r),
        Column("description", lambda r: r, max_width=60),
    ]
    cells = [["a" * 26, "d" * 100]]
    assert fit_widths(columns, cells, None) == [26, 60]
    assert fit_widths(columns, cells, 50) == [26, 50 - 26 - 7]
    assert fit_widths(columns, cells, 10) == [26, 11]  # never below the header


def test_cell() -> None:
    assert cell(None) == ""
    assert cell(True) == "yes"
    assert cell({"a": 1}) == '{"a": 1}'
