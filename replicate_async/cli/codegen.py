"""``codegen``: a typed Python module for a model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from .. import AsyncReplicate
from ._output import Output
from ._params import RUN_REF
from ._runtime import with_client

__all__ = ["codegen"]


@click.command()
@click.argument("model", type=RUN_REF)
@click.option(
    "-o",
    "--output",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the module to this file (default: print it).",
)
@click.option("--name", help="The function's name (default: the model's name in snake_case).")
@with_client
async def codegen(
    client: AsyncReplicate, out: Output, model: str, path: Path | None, name: str | None
) -> None:
    """Generate a typed module for MODEL (OWNER/NAME or OWNER/NAME:VERSION).

    The module has a TypedDict of the model's inputs (required ones marked, enums as
    Literal types, each documented with its description and default) and an async
    function that runs the model with client.use(). It passes mypy --strict and ruff.
    Give a version to pin the types and the runs to it.
    """
    from .._workflows.codegen import generate_module

    schema = await client.use(model).schema()
    source = generate_module(model, schema.openapi_schema, version=schema.version, name=name)
    if path is None:
        out.write(source)
        return
    await asyncio.to_thread(path.write_text, source, encoding="utf-8")
    out.say(f"wrote {path} ({len(source.splitlines())} lines)")
