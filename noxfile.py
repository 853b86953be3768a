"""Automation: ``nox`` runs the suite (Python 3.11-3.13 x aiohttp 3.13/3.14), lint, types, docs.

Every session installs with ``-c constraints.txt``: the versions CI and ``[dev]`` use, tools
included, so a release upstream cannot break CI without a change here. Two sessions look
past the pins on purpose:

- ``nox -s latest`` runs mypy and the suite against the newest release of everything (the
  early warning; CI reports it but does not gate on it);
- ``nox -s lock`` rewrites ``constraints.txt`` from the newest releases (then run the suite).

``nox -s bench`` runs the benchmarks (not a default session: it takes minutes).
"""

from __future__ import annotations

import os
import pathlib
import tempfile

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True

HERE = pathlib.Path(__file__).parent
CONSTRAINTS = HERE / "constraints.txt"
#: Every extra, so the lock covers whatever any session or user installs.
ALL_EXTRAS = ".[cli,test,dev,redis,speedups,otel,docs]"
OURS = "replicate_async"
#: The Pythons the package supports (the classifiers in pyproject.toml say the same).
PYTHONS = ["3.11", "3.12", "3.13"]

# pyenv's shims only run the versions pyenv is told about: make each supported Python
# that pyenv has installed reachable as ``python3.X`` for nox (the global one stays first).
_PYENV = pathlib.Path.home() / ".pyenv"
if "PYENV_VERSION" not in os.environ and (_PYENV / "versions").is_dir():
    _installed = sorted(p.name for p in (_PYENV / "versions").iterdir())
    _wanted = [v for v in _installed if any(v.startswith(f"{py}.") for py in PYTHONS)]
    _global = (_PYENV / "version").read_text().split() if (_PYENV / "version").exists() else []
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys([*_global, *_wanted]))

AIOHTTP_FAMILY = ("multidict", "yarl", "propcache", "frozenlist", "aiosignal", "aiohappyeyeballs")
AIOHTTP = {"3.13": "aiohttp>=3.13,<3.14", "3.14": "aiohttp>=3.14,<3.15"}


def _constraints_without(*names: str) -> str:
    """The constraints file less some packages (a session that tests another version of them)."""
    keep = [
        line
        for line in CONSTRAINTS.read_text().splitlines()
        if line.split("==")[0].strip().lower() not in names
    ]
    path = pathlib.Path(tempfile.mkdtemp()) / "constraints.txt"
    path.write_text("\n".join(keep) + "\n")
    return str(path)


@nox.session(python=PYTHONS)
@nox.parametrize("aiohttp", list(AIOHTTP))
def tests(session: nox.Session, aiohttp: str) -> None:
    """The whole test suite on one supported Python against the newest release of one
    aiohttp minor version: ``nox -s tests`` runs every pair, ``nox -s
    "tests-3.13(aiohttp='3.13')"`` one (CI's second leg: the newest Python, the older aiohttp)."""
    # The pins hold aiohttp 3.14 and its own dependencies (multidict 7 and so on); the other
    # minor version brings the versions of those it supports.
    constraints = _constraints_without("aiohttp", *AIOHTTP_FAMILY)
    session.install("-c", constraints, "-e", ".[test]", AIOHTTP[aiohttp])
    env = {}
    if aiohttp == "3.13":
        # aiohttp 3.13's C HTTP parser reads the QUERY method as "<unknown>", so the fake
        # server (an aiohttp.web app) answers 405 to QUERY /v1/models. The pure-Python
        # parser knows it. Our client side is unaffected: it only sends the method.
        env["AIOHTTP_NO_EXTENSIONS"] = "1"
    session.run("python", "-m", "pytest", *session.posargs, env=env)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built strictly (a broken link or reference fails)."""
    session.install("-c", str(CONSTRAINTS), "-e", ".[docs]")
    site = pathlib.Path(session.create_tmp()) / "site"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.install("-c", str(CONSTRAINTS), "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-c", str(CONSTRAINTS), "-e", ".[test,speedups]", "mypy")
    session.run("mypy", "--strict", "replicate_async")


@nox.session
def latest(session: nox.Session) -> None:
    """mypy and the suite against the newest release of every dependency (not gating)."""
    session.install("--upgrade", "--upgrade-strategy", "eager", "-e", ALL_EXTRAS)
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("mypy", "--strict", "replicate_async")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session
def lock(session: nox.Session) -> None:
    """Rewrite constraints.txt from the newest releases of every extra."""
    session.install("--upgrade", "--upgrade-strategy", "eager", ALL_EXTRAS)
    frozen = session.run("python", "-m", "pip", "freeze", silent=True) or ""
    pins = sorted(
        line
        for line in frozen.splitlines()
        if "==" in line and line.split("==")[0].lower() not in ("replicate-async", OURS)
    )
    CONSTRAINTS.write_text(
        "# What CI and the README's install commands use: `nox -s lock` rewrites it.\n"
        + "\n".join(pins)
        + "\n"
    )


@nox.session
def demo(session: nox.Session) -> None:
    """The README's main command: the demo against the embedded fake server."""
    session.install("-c", str(CONSTRAINTS), ".[cli]")
    session.run("replicate-async", "demo")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks side by side with raw aiohttp and Replicate's official client."""
    constraints = _constraints_without("replicate")
    session.install("-c", constraints, "-e", ".[speedups]", "replicate==1.0.7")
    session.run("python", "-m", "benchmarks.run", *session.posargs)
