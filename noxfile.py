"""Automation: ``nox`` runs tests (on the newest aiohttp 3.13 and 3.14), lint and typecheck.

``nox -s bench`` runs the benchmarks (not a default session: it takes minutes).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True

#: The Pythons the package supports (the classifiers in pyproject.toml say the same).
PYTHONS = ["3.11", "3.12", "3.13"]

# pyenv's shims only run the versions pyenv is told about: make each supported Python
# that pyenv has installed reachable as ``python3.X`` for nox (the global one stays first).
_PYENV = Path.home() / ".pyenv"
if "PYENV_VERSION" not in os.environ and (_PYENV / "versions").is_dir():
    _installed = sorted(p.name for p in (_PYENV / "versions").iterdir())
    _wanted = [v for v in _installed if any(v.startswith(f"{py}.") for py in PYTHONS)]
    _global = (_PYENV / "version").read_text().split() if (_PYENV / "version").exists() else []
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys([*_global, *_wanted]))

AIOHTTP = {"3.13": "aiohttp>=3.13,<3.14", "3.14": "aiohttp>=3.14,<3.15"}


@nox.session
@nox.parametrize("aiohttp", list(AIOHTTP))
def tests(session: nox.Session, aiohttp: str) -> None:
    """The whole test suite, against the newest release of one aiohttp minor version."""
    session.install("-e", ".[test]", AIOHTTP[aiohttp])
    env = {}
    if aiohttp == "3.13":
        # aiohttp 3.13's C HTTP parser reads the QUERY method as "<unknown>", so the fake
        # server (an aiohttp.web app) answers 405 to QUERY /v1/models. The pure-Python
        # parser knows it. Our client side is unaffected: it only sends the method.
        env["AIOHTTP_NO_EXTENSIONS"] = "1"
    session.run("python", "-m", "pytest", *session.posargs, env=env)


@nox.session(python=PYTHONS)
def suite(session: nox.Session) -> None:
    """The whole test suite on one supported Python, newest aiohttp: ``nox -s suite`` runs
    3.11, 3.12 and 3.13; ``nox -s suite-3.13`` one of them."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built strictly (a broken link or reference fails)."""
    session.install("-e", ".[docs]")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", str(Path(session.create_tmp()) / "site")
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[test,speedups]", "mypy>=1.10")
    session.run("mypy", "--strict", "replicate_async")


@nox.session
def demo(session: nox.Session) -> None:
    """The README's main command: the demo against the embedded fake server."""
    session.install(".[cli]")
    session.run("replicate-async", "demo")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with raw aiohttp and Replicate's official client."""
    session.install("-e", ".[speedups]", "replicate==1.0.7")
    session.run("python", "-m", "benchmarks.run", *session.posargs)
