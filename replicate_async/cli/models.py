"""``models list|get|search|versions``."""

from __future__ import annotations

import click

from .. import AsyncReplicate
from .._literals import ModelSortBy, SortDirection
from ._formats import INPUT_COLUMNS, MODEL_COLUMNS, MODEL_FIELDS, VERSION_COLUMNS, input_specs
from ._output import Output
from ._params import MODEL_REF, json_option, list_options
from ._runtime import with_client

__all__ = ["models"]


@click.group()
def models() -> None:
    """Browse and search the model catalogue."""


@models.command("list")
@click.option("--sort-by", type=click.Choice(["model_created_at", "latest_version_created_at"]))
@click.option("--sort-direction", type=click.Choice(["asc", "desc"]))
@list_options
@with_client
async def list_models(
    client: AsyncReplicate,
    out: Output,
    sort_by: ModelSortBy | None,
    sort_direction: SortDirection | None,
) -> None:
    """List public models, page by page."""
    found = client.models.list(sort_by=sort_by, sort_direction=sort_direction)
    await out.items(found, MODEL_COLUMNS, title="models")


@models.command("get")
@click.argument("model", type=MODEL_REF)
@json_option
@with_client
async def get_model(client: AsyncReplicate, out: Output, model: str) -> None:
    """Show one model (OWNER/NAME) and the inputs of its latest version: their types,
    defaults and which are required."""
    found = await client.models.get(model)
    out.one(found, MODEL_FIELDS)
    specs = input_specs(found.latest_version)
    if specs and not out.json:
        out.write("\n")
        out.table(specs, INPUT_COLUMNS, title="inputs")


@models.command("search")
@click.argument("query")
@list_options
@with_client
async def search_models(client: AsyncReplicate, out: Output, query: str) -> None:
    """Search public models for QUERY (every page, not just the first)."""
    await out.items(client.models.search(query), MODEL_COLUMNS, title=f"models matching {query!r}")


@models.command("versions")
@click.argument("model", type=MODEL_REF)
@list_options
@with_client
async def list_versions(client: AsyncReplicate, out: Output, model: str) -> None:
    """List the versions of a model (OWNER/NAME), newest first."""
    await out.items(client.models.versions.list(model), VERSION_COLUMNS, title=f"{model} versions")
