"""A library never toggles process-global interpreter state behind its caller's back.

The cyclic garbage collector is the caller's: another thread may have turned it off (and a
library turning it back on undoes that), and free-threaded builds share it across threads.
This reads the package's source (nothing is imported or run), so a call on any path counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import replicate_async

PACKAGE = Path(replicate_async.__file__).resolve().parent
#: What changes the collector for the whole process.
GC_SWITCHES = frozenset({"disable", "enable", "freeze", "unfreeze", "set_threshold"})


def gc_switches(source: str) -> list[str]:
    """``gc.disable()`` and the like in ``source`` (also through ``import gc as x`` or
    ``from gc import disable``), as ``"line: call"``."""
    tree = ast.parse(source)
    modules = {"gc"}
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "gc"}
        elif isinstance(node, ast.ImportFrom) and node.module == "gc":
            found += [f"{node.lineno}: from gc import {a.name}" for a in node.names]
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr in GC_SWITCHES
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_the_scan_finds_every_spelling() -> None:
    source = (
        "import gc\nimport gc as g\nfrom gc import freeze\n"
        "def f():\n    gc.disable()\n    g.enable()\n    gc.collect()\n    gc.isenabled()\n"
    )
    assert gc_switches(source) == ["3: from gc import freeze", "5: gc.disable", "6: g.enable"]
    assert gc_switches("import gc\nx = gc.get_count()\n") == []


def test_no_module_switches_the_garbage_collector() -> None:
    offenders = {
        str(path.relative_to(PACKAGE.parent)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if (found := gc_switches(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
