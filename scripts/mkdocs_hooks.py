"""mkdocs hooks: the API reference pages, generated from the package at build time.

Every name in ``replicate_async.__all__`` gets an entry (grouped by the module that defines
it, in the order of ``replicate_async._EXPORTS``), and each public subpackage or module
(``testing``, ``redis``, ``webhooks``, ``asgi``) a page of its own over its ``__all__``, so
a name added to the package appears in the reference without anyone editing the docs.
mkdocstrings renders each entry from its docstring.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

#: Page titles of the modules the top-level names come from.
TITLES = {
    "._client": "The client",
    ".exceptions": "Exceptions",
    ".models": "Result models",
    "._config": "Configuration",
    "._literals": "Literals",
    "._core.options": "Request options",
    "._core.raw": "Raw responses",
    "._core.hooks": "Hooks",
    "._core.throttle": "Rate limiting",
    ".pagination": "Pagination",
    "._core.sse": "Server-sent events",
    "._core.streaming": "Streaming responses",
    "._workflows.file_outputs": "Files",
    "._workflows.run_many": "Fan-out",
    "._waiter": "Waiting on webhooks",
    "._workflows.use": "Models as functions",
}
#: Public modules documented whole (their ``__all__``), with their page titles.
MODULES = {
    "replicate_async.webhooks": "webhooks: verifying deliveries",
    "replicate_async.asgi": "asgi: web framework integration",
    "replicate_async.testing": "testing: the fake Replicate",
    "replicate_async.redis": "redis: fleet coordination",
}


def _static_all(module: str) -> list[str]:
    """A module's ``__all__``, read from its source (importing ``redis`` or
    ``opentelemetry`` is not needed to document what needs them)."""
    base = Path(__file__).resolve().parents[1] / Path(*module.split("."))
    source = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return [str(item) for item in ast.literal_eval(node.value)]
    return []


#: Result models: show ``to_dict``/``to_json`` (from a private base) on each, not the base.
_MODEL_OPTIONS = "    options:\n      inherited_members: true\n      show_bases: false\n"


def _slug(module: str) -> str:
    return module.rsplit(".", 1)[-1].lstrip("_")


def top_level_groups() -> dict[str, list[str]]:
    """The package's public names, by the module (of ``_EXPORTS``) defining them."""
    package = importlib.import_module("replicate_async")
    groups: dict[str, list[str]] = {}
    for name in package.__all__:
        groups.setdefault(package._EXPORTS.get(name, "._client"), []).append(name)
    return groups


def reference_pages() -> dict[str, str]:
    """``{path under docs/: markdown}`` for the whole reference."""
    pages: dict[str, str] = {}
    index = [
        "# API reference",
        "",
        "Generated from the docstrings. Everything below is importable from the package",
        "root (`from replicate_async import ...`) unless the page names a module.",
        "",
    ]
    for source, names in top_level_groups().items():
        slug = _slug(source)
        title = TITLES.get(source, slug)
        body = [f"# {title}", ""]
        options = _MODEL_OPTIONS if source == ".models" else ""
        body += [f"::: replicate_async.{name}\n{options}" for name in names]
        pages[f"reference/{slug}.md"] = "\n".join(body)
        index.append(f"- [{title}]({slug}.md): " + ", ".join(f"`{n}`" for n in names))
    for module, title in MODULES.items():
        names = _static_all(module)
        slug = "module-" + module.rsplit(".", 1)[-1]
        body = [f"# {title}", "", f"`import {module}`", ""]
        body += [f"::: {module}.{name}\n" for name in names]
        pages[f"reference/{slug}.md"] = "\n".join(body)
        index.append(f"- [`{module}`]({slug}.md): " + ", ".join(f"`{n}`" for n in names))
    pages["reference/index.md"] = "\n".join(index) + "\n"
    return pages


try:  # run before the plugins (llmstxt lists the reference too); tests import without mkdocs
    from mkdocs.plugins import event_priority
except ImportError:  # pragma: no cover - the test suite does not install mkdocs

    def event_priority(priority: float) -> Any:
        return lambda function: function


@event_priority(100)
def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    """Add the generated reference pages to the site."""
    from mkdocs.structure.files import File

    for path, content in reference_pages().items():
        files.append(File.generated(config, path, content=content))
    return files
