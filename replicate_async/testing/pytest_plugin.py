"""pytest plugin: the ``replicate_fake`` fixture (a started :class:`FakeReplicate`) and
``replicate_fake_env`` (the same, with ``REPLICATE_BASE_URL``/``REPLICATE_API_TOKEN`` set).

Registered through the ``pytest11`` entry point, so installing replicate_async is enough::

    async def test_something(replicate_fake):
        async with replicate_fake.client() as client:
            ...

The fixtures are function-scoped and asynchronous, so they need pytest-asyncio (in
``asyncio_mode = "auto"``, or mark tests ``@pytest.mark.asyncio``). This module imports
neither pytest-asyncio nor the fake at import time: the fake is imported when a test
first asks for it, so the plugin adds next to nothing to a test run that does not use it,
and without pytest-asyncio using a fixture fails with a clear message.

Options can be given per test with ``@pytest.mark.replicate_fake(page_size=2, ...)``.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._server import FakeReplicate

__all__ = ["pytest_configure", "replicate_fake", "replicate_fake_env"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``replicate_fake`` marker (keyword options for the fixture)."""
    config.addinivalue_line(
        "markers",
        "replicate_fake(**options): keyword options for the replicate_fake fixture's server",
    )


async def _fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeReplicate]:
    from ._server import FakeReplicate

    marker = request.node.get_closest_marker("replicate_fake")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    async with FakeReplicate(**options) as fake:
        yield fake


async def _fake_env(
    replicate_fake: FakeReplicate, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FakeReplicate]:
    for name, value in replicate_fake.env_vars.items():
        monkeypatch.setenv(name, value)
    yield replicate_fake


def _missing_asyncio(request: pytest.FixtureRequest) -> FakeReplicate:
    raise pytest.UsageError(
        "the replicate_fake fixtures are asynchronous and need pytest-asyncio "
        "(pip install pytest-asyncio; set asyncio_mode = 'auto')"
    )


def _build_fixture(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    try:
        pytest_asyncio = importlib.import_module("pytest_asyncio")
    except ImportError:
        return pytest.fixture(name=name)(_missing_asyncio)
    fixture: Callable[..., Any] = pytest_asyncio.fixture(name=name)(func)
    return fixture


replicate_fake = _build_fixture("replicate_fake", _fake)
"""A started :class:`FakeReplicate`, stopped after the test."""

replicate_fake_env = _build_fixture("replicate_fake_env", _fake_env)
"""The ``replicate_fake`` server, with ``REPLICATE_BASE_URL`` and ``REPLICATE_API_TOKEN``
pointing at it for the test (for apps that build their client from the environment)."""
