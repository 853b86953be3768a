"""The public surface: `__all__` sorted and complete; secrets never shown in reprs."""

from __future__ import annotations

import types

import pytest

import replicate_async
from replicate_async import AsyncReplicate, RetryPolicy, WebhookSecret, exceptions, models
from replicate_async._converter import structure

from ._helpers import TOKEN


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff/isort style: CONSTANTS, then Classes, then functions and dunders."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


@pytest.mark.parametrize(
    "module", [replicate_async, exceptions, models], ids=["replicate_async", "exceptions", "models"]
)
def test_all_is_sorted_and_unique(module: types.ModuleType) -> None:
    """`__all__` has no duplicates and is in isort order."""
    names = list(module.__all__)
    assert len(names) == len(set(names))
    assert names == sorted(names, key=_isort_key)


@pytest.mark.parametrize(
    "module", [replicate_async, exceptions, models], ids=["replicate_async", "exceptions", "models"]
)
def test_all_names_resolve(module: types.ModuleType) -> None:
    """Every name in `__all__` exists on the module."""
    for name in module.__all__:
        assert hasattr(module, name), name


def test_top_level_all_is_complete() -> None:
    """Every public non-module name of the package is listed in `__all__`."""
    public = {
        name
        for name, value in vars(replicate_async).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public - set(replicate_async.__all__) == set()


def test_every_exception_exported() -> None:
    """Every exception class is importable from the package root."""
    assert set(exceptions.__all__) <= set(replicate_async.__all__)
    for name in exceptions.__all__:
        assert getattr(replicate_async, name) is getattr(exceptions, name)


def test_core_models_exported() -> None:
    """The models users receive from operations are importable from the package root."""
    for name in (
        "Account",
        "Collection",
        "Deployment",
        "File",
        "Hardware",
        "Model",
        "Page",
        "Prediction",
        "SearchResult",
        "Training",
        "Version",
        "WebhookSecret",
        "Status",
        "TERMINAL_STATUSES",
    ):
        assert getattr(replicate_async, name) is getattr(models, name)
    assert {"AsyncReplicate", "AsyncPaginator", "RetryPolicy", "Timeouts", "ClientConfig"} <= set(
        replicate_async.__all__
    )


def test_version_string() -> None:
    """`__version__` is exported and matches the User-Agent."""
    assert replicate_async.__version__ == "0.1.0"
    agent = AsyncReplicate(api_token=TOKEN)._http._base_headers["User-Agent"]
    assert agent.startswith(f"replicate-async/{replicate_async.__version__} ")


def test_typed_marker_shipped() -> None:
    """The package ships py.typed for type checkers."""
    from importlib.resources import files

    assert files("replicate_async").joinpath("py.typed").is_file()


def test_token_never_in_reprs() -> None:
    """Neither the client, its config nor its HTTP core show the token."""
    client = AsyncReplicate(api_token=TOKEN, retry=RetryPolicy(max_retries=1))
    for text in (
        repr(client),
        str(client),
        repr(client.config),
        repr(client._http),
        repr(vars(client.config)) if hasattr(client.config, "__dict__") else "",
    ):
        assert TOKEN not in text


def test_webhook_secret_repr_hides_key() -> None:
    """WebhookSecret's repr hides the signing key."""
    secret = structure({"key": "whsec_sekrit"}, WebhookSecret)
    assert "sekrit" not in repr(secret)
    assert "WebhookSecret" in repr(secret)
