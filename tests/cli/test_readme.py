"""Every ```python block of README.md runs, as written, against the fake API.

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

README = Path(__file__).resolve().parents[2] / "README.md"
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_PYTHONISH = {"python", "py", "python3", "pycon", "ipython"}


def _blocks() -> list[tuple[int, str, str]]:
    """``(line, info, code)`` of every fenced block."""
    text = README.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(1).strip(), m.group(2))
        for m in _FENCE.finditer(text)
    ]


PYTHON_BLOCKS = [(line, code) for line, info, code in _blocks() if info == "python"]


def test_every_python_block_is_collected() -> None:
    text = README.read_text()
    assert len(PYTHON_BLOCKS) == text.count("\n```python\n")
    assert len(PYTHON_BLOCKS) >= 12
    # No Python hiding in a fence the runner would skip.
    other = [info for _, info, _ in _blocks() if info.split(" ")[0] in _PYTHONISH - {"python"}]
    assert other == []
    assert all(info == "python" for _, info, _ in _blocks() if info.startswith("python"))


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
    ("line", "code"), PYTHON_BLOCKS, ids=[f"line{n}" for n, _ in PYTHON_BLOCKS]
)
def test_python_block_runs(
    line: int,
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
    exec(compile(code, f"README.md:{line}", "exec"), namespace)
    if any(name.startswith("test_") for name in namespace):
        assert asyncio.run(_run_tests(namespace)) >= 1
    else:
        assert "asyncio.run(main(" in code or "verify(" in code
        assert capsys.readouterr().out, "a README program should show what it did"


def test_ci_runs_the_readme_commands() -> None:
    """CI installs from the same pins and runs the same test command as the README says."""
    ci = (README.parent / ".ci" / "run").read_text()
    first, second = README.read_text().splitlines()[:2]
    for command in (first, second):
        install = command.split("&& ")[2].strip()
        assert install.replace("pip install", "pip install -q") in ci
    assert "\npython -m pytest\n" in ci
