"""The JSON codec works without the optional orjson speed-up."""

from __future__ import annotations

from types import ModuleType

import pytest

import replicate_async._converter as converter

from ._helpers import converter_without_orjson


def _load_without_orjson(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The converter module as imported without orjson."""
    return converter_without_orjson(monkeypatch)


def test_stdlib_json_fallback_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    """With orjson unavailable, loads/dumps use the stdlib and behave the same."""
    fallback = _load_without_orjson(monkeypatch)
    assert fallback.dumps({"a": "é", "b": [1, 2.5, None]}) == '{"a":"é","b":[1,2.5,null]}'.encode()
    assert fallback.loads(b'{"model": "a", "model": "b"}') == {"model": "b"}
    assert fallback.loads('{"x": 1}') == {"x": 1}
    with pytest.raises(ValueError, match="JSON"):
        fallback.dumps({"nan": float("nan")})
    assert fallback.dumps is not converter.dumps


def test_stdlib_fallback_refuses_nesting_as_orjson_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond 1,024 levels the stdlib decoder refuses, on every Python (3.13's own decoder
    would build a 5,000-deep list); wide bodies with many brackets, and brackets inside
    strings, still decode."""
    fallback = _load_without_orjson(monkeypatch)
    assert fallback.loads("[" * 500 + "]" * 500) is not None
    with pytest.raises(ValueError, match="nested more than 1024"):
        fallback.loads(b"[" * 1025 + b"]" * 1025)
    with pytest.raises(ValueError, match="nested more than 1024"):
        fallback.loads('{"a":' * 2000 + "1" + "}" * 2000)
    wide = "[" + ",".join(['{"a": [1]}'] * 3000) + "]"
    assert len(fallback.loads(wide)) == 3000
    brackets_in_text = '{"log": "' + "[{" * 3000 + '\\"", "x": [1]}'
    assert fallback.loads(brackets_in_text)["x"] == [1]
