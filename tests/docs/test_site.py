"""The documentation site's sources: every public name has a reference entry, and the
generated reference names only what exists. (The site itself is built by ``nox -s docs``
and in CI with ``mkdocs build --strict``; its Python blocks run in tests/cli/test_readme.py.)
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from types import ModuleType

import replicate_async

ROOT = Path(__file__).resolve().parents[2]


def _hooks() -> ModuleType:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module("mkdocs_hooks")
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def _entries() -> list[str]:
    pages = _hooks().reference_pages()
    return [m.group(1) for text in pages.values() for m in re.finditer(r"^::: (\S+)$", text, re.M)]


def test_every_public_name_has_a_reference_entry() -> None:
    entries = set(_entries())
    assert {f"replicate_async.{name}" for name in replicate_async.__all__} <= entries
    for module in ("webhooks", "asgi", "testing", "redis"):
        names = importlib.import_module(f"replicate_async.{module}").__all__
        assert {f"replicate_async.{module}.{name}" for name in names} <= entries


def test_every_reference_entry_exists() -> None:
    for entry in _entries():
        module, _, name = entry.rpartition(".")
        assert hasattr(importlib.import_module(module), name), entry


def test_the_site_has_no_hand_kept_nav() -> None:
    """A guide added as docs/guides/<x>.md appears in the navigation by itself."""
    config = (ROOT / "mkdocs.yml").read_text()
    assert not re.search(r"^nav:", config, re.M)
