"""Fixtures for the command-line tests: a fake API on a background thread, and a runner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from replicate_async.cli import cli

from ._fakes import ThreadedFake


@pytest.fixture(scope="session")
def server() -> Iterator[ThreadedFake]:
    """One fake API for the whole session (tests use distinct names and ids).

    It lists 261 public models: the seeded ones and 250 synthetic ones (three pages).
    """
    threaded = ThreadedFake().start()
    threaded.call(lambda fake: fake.add_models(250))
    try:
        yield threaded
    finally:
        threaded.stop()


@pytest.fixture
def env(server: ThreadedFake, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the SDK at the fake through the environment, as a user would."""
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    return server.env


class Invoke:
    """``invoke("models", "list")`` runs the CLI in-process and returns click's result."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return self.runner.invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def invoke(env: dict[str, str]) -> Invoke:
    """Run the command line against the fake."""
    return Invoke()
