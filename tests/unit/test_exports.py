"""The public surface: `__all__` sorted and complete; secrets never shown in reprs."""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

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


def _type_checking_imports() -> dict[str, str]:
    """What the package's ``if typing.TYPE_CHECKING:`` block imports: name -> module."""
    tree = ast.parse(Path(replicate_async.__file__).read_text(encoding="utf-8"))
    (block,) = [node for node in tree.body if isinstance(node, ast.If)]
    assert ast.unparse(block.test) == "typing.TYPE_CHECKING"
    found: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom), ast.unparse(node)
        for alias in node.names:
            # `X as X`: an explicit re-export, which mypy --strict's users need.
            assert alias.asname == alias.name, ast.unparse(node)
            assert alias.name not in found, alias.name
            found[alias.name] = "." * node.level + (node.module or "")
    return found


def test_type_checking_imports_are_the_export_table() -> None:
    """Type checkers see exactly the names, from exactly the modules, that the lazy
    lookup imports at run time (one table; the TYPE_CHECKING block mirrors it)."""
    assert _type_checking_imports() == replicate_async._EXPORTS
    assert replicate_async.__all__ == [*replicate_async._EXPORTS, "__version__"]


def test_import_is_lazy_and_a_name_loads_only_its_module() -> None:
    """`import replicate_async` loads neither aiohttp nor the client; asking for one name
    imports that name's module (RetryPolicy: the config, still without aiohttp)."""
    code = (
        "import sys, replicate_async\n"
        "before = set(sys.modules)\n"
        "replicate_async.RetryPolicy\n"
        "print(sorted(before), sorted(set(sys.modules) - before), sep='\\n')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    before, added = (ast.literal_eval(line) for line in out)
    assert not {"aiohttp", "replicate_async._client", "replicate_async._config"} & set(before)
    assert "replicate_async._config" in added
    assert "aiohttp" not in added
