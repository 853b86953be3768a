"""Every ```python block of README.md and of the documentation site (docs/**/*.md) runs,
as written, against the fake API (a block the site copies from the README verbatim runs
once, under its README line).

The convention (also stated in an HTML comment at the top of README.md): each block is a
complete program, run as ``__main__`` in a fresh namespace and a temporary directory, with
REPLICATE_BASE_URL and REPLICATE_API_TOKEN pointing at a fake server. A block that defines
``test_*`` functions is a pytest module: each is called with a started fake for
``replicate_fake``, honouring a ``@pytest.mark.replicate_fake(...)`` marker.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from replicate_async.testing import FakeReplicate

from ._fakes import ThreadedFake

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_PYTHONISH = {"python", "py", "python3", "pycon", "ipython"}


def _blocks(page: Path = README) -> list[tuple[int, str, str]]:
    """``(line, info, code)`` of every fenced block of ``page``."""
    text = page.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(1).strip(), m.group(2))
        for m in _FENCE.finditer(text)
    ]


PYTHON_BLOCKS = [(line, code) for line, info, code in _blocks() if info == "python"]
_IN_README = {code for _, code in PYTHON_BLOCKS}
#: ``(where, code)`` of every Python block, README first; a docs copy of a README block
#: (same code) is not run a second time.
ALL_BLOCKS = [(f"README.md:{line}", code) for line, code in PYTHON_BLOCKS] + [
    (f"{page.relative_to(ROOT)}:{line}", code)
    for page in DOCS
    for line, info, code in _blocks(page)
    if info == "python" and code not in _IN_README
]


def test_every_python_block_is_collected() -> None:
    text = README.read_text()
    assert len(PYTHON_BLOCKS) == text.count("\n```python\n")
    assert len(PYTHON_BLOCKS) >= 1  # the quickstart; the guides' examples are in docs/
    # No Python hiding in a fence the runner would skip.
    other = [info for _, info, _ in _blocks() if info.split(" ")[0] in _PYTHONISH - {"python"}]
    assert other == []
    assert all(info == "python" for _, info, _ in _blocks() if info.startswith("python"))


@pytest.mark.parametrize("page", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_python_block_of_the_site_is_collected(page: Path) -> None:
    text = page.read_text()
    python = [info for _, info, _ in _blocks(page) if info == "python"]
    assert len(python) == text.count("\n```python\n") + text.startswith("```python\n")
    other = [info for _, info, _ in _blocks(page) if info.split(" ")[0] in _PYTHONISH - {"python"}]
    assert other == []


def test_the_site_has_python_blocks() -> None:
    assert len([where for where, _ in ALL_BLOCKS if where.startswith("docs")]) >= 5


def test_readme_starts_with_the_two_commands() -> None:
    first, second = README.read_text().splitlines()[:2]
    assert first.strip() == (
        "python -m venv .venv && . .venv/bin/activate && "
        'pip install -c constraints.txt ".[cli]" '
        "&& replicate-async demo"
    )
    assert second.strip() == (
        "python -m venv .venv && . .venv/bin/activate && "
        'pip install -c constraints.txt ".[test,dev]" '
        "&& python -m pytest"
    )


async def _run_tests(namespace: dict[str, Any]) -> int:
    ran = 0
    for name, fn in namespace.items():
        if not (name.startswith("test_") and inspect.iscoroutinefunction(fn)):
            continue
        options: dict[str, Any] = {}
        for mark in getattr(fn, "pytestmark", []):
            if mark.name == "replicate_fake":
                options.update(mark.kwargs)
        async with FakeReplicate(**options) as fake:
            await asyncio.wait_for(fn(replicate_fake=fake), timeout=30)
        ran += 1
    return ran


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("where", "code"),
    ALL_BLOCKS,
    ids=[w.replace("README.md:", "line") if w.startswith("README") else w for w, _ in ALL_BLOCKS],
)
def test_python_block_runs(
    where: str,
    code: str,
    server: ThreadedFake,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    # The "many workers" programs read REDIS_URL: here they get a loopback port nobody
    # listens on, so they run on the documented local fallback and never reach a Redis we
    # did not start (tests/redis/test_readme_section.py runs them against a real one).
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{_unused_port()}/0")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, where, "exec"), namespace)
    if any(name.startswith("test_") for name in namespace):
        assert asyncio.run(_run_tests(namespace)) >= 1
    else:
        assert "asyncio.run(main(" in code or "verify(" in code
        assert capsys.readouterr().out, "an example program should show what it did"


def test_ci_runs_the_readme_commands() -> None:
    """CI installs from the same pins and runs the same test command as the README says."""
    ci = (README.parent / ".ci" / "run").read_text()
    first, second = README.read_text().splitlines()[:2]
    for command in (first, second):
        install = command.split("&& ")[2].strip()
        assert install.replace("pip install", "pip install -q") in ci
    assert "\npython -m pytest\n" in ci
