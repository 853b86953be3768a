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
