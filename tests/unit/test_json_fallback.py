"""The JSON codec works without the optional orjson speed-up."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

import replicate_async._converter as converter


def _load_without_orjson(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A separate copy of the converter module, imported while orjson is unavailable.

    A copy (not a reload) so the real module, and the classes others imported from it,
    stay untouched.
    """
    monkeypatch.setitem(sys.modules, "orjson", None)  # makes `import orjson` fail
    spec = importlib.util.spec_from_file_location(
        "replicate_async._converter_without_orjson", converter.__file__
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stdlib_json_fallback_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    """With orjson unavailable, loads/dumps use the stdlib and behave the same."""
    fallback = _load_without_orjson(monkeypatch)
    assert fallback.dumps({"a": "é", "b": [1, 2.5, None]}) == '{"a":"é","b":[1,2.5,null]}'.encode()
    assert fallback.loads(b'{"model": "a", "model": "b"}') == {"model": "b"}
    assert fallback.loads('{"x": 1}') == {"x": 1}
    with pytest.raises(ValueError, match="JSON"):
        fallback.dumps({"nan": float("nan")})
    assert fallback.dumps is not converter.dumps
