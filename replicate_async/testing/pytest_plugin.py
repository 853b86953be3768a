"""pytest plugin: the ``replicate_fake`` fixture (a started :class:`FakeReplicate`).

Registered through the ``pytest11`` entry point, so installing replicate_async is enough::

    async def test_something(replicate_fake):
        async with replicate_fake.client() as client:
            ...

The fixture is function-scoped and asynchronous, so it needs pytest-asyncio (in
``asyncio_mode = "auto"``, or mark tests ``@pytest.mark.asyncio``). This module imports
nothing from pytest-asyncio at import time: without it, using the fixture fails with a
clear message instead of breaking pytest's start-up.

Options can be given per test with ``@pytest.mark.replicate_fake(page_size=2, ...)``.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ._server import FakeReplicate

__all__ = ["pytest_configure", "replicate_fake"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``replicate_fake`` marker (keyword options for the fixture)."""
    config.addinivalue_line(
        "markers",
        "replicate_fake(**options): keyword options for the replicate_fake fixture's server",
    )


async def _fake(request: pytest.FixtureRequest) -> AsyncIterator[FakeReplicate]:
    marker = request.node.get_closest_marker("replicate_fake")
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    async with FakeReplicate(**options) as fake:
        yield fake


def _missing_asyncio(request: pytest.FixtureRequest) -> FakeReplicate:
    raise pytest.UsageError(
        "the replicate_fake fixture is asynchronous and needs pytest-asyncio "
        "(pip install pytest-asyncio; set asyncio_mode = 'auto')"
    )


def _build_fixture() -> Callable[..., Any]:
    try:
        pytest_asyncio = importlib.import_module("pytest_asyncio")
    except ImportError:
        return pytest.fixture(name="replicate_fake")(_missing_asyncio)
    decorator = pytest_asyncio.fixture(name="replicate_fake")
    fixture: Callable[..., Any] = decorator(_fake)
    return fixture


replicate_fake = _build_fixture()
"""A started :class:`FakeReplicate`, stopped after the test."""
