"""``collections list|get``, ``hardware list`` and ``account``."""

from __future__ import annotations

import click

from .. import AsyncReplicate
from ._formats import (
    ACCOUNT_FIELDS,
    COLLECTION_COLUMNS,
    COLLECTION_FIELDS,
    HARDWARE_COLUMNS,
    MODEL_COLUMNS,
)
from ._output import Output
from ._params import json_option, list_options
from ._runtime import with_client

__all__ = ["account", "collections", "hardware"]


@click.group()
def collections() -> None:
    """Curated collections of models."""


@collections.command("list")
@list_options
@with_client
async def list_collections(client: AsyncReplicate, out: Output) -> None:
    """List collections."""
    await out.items(client.collections.list(), COLLECTION_COLUMNS, title="collections")


@collections.command("get")
@click.argument("slug")
@json_option
@with_client
async def get_collection(client: AsyncReplicate, out: Output, slug: str) -> None:
    """Show a collection and its models."""
    collection = await client.collections.get(slug)
    out.one(collection, COLLECTION_FIELDS)
    if not out.json and collection.models:
        out.table(collection.models, MODEL_COLUMNS, title="models")


@click.group()
def hardware() -> None:
    """Hardware that models and deployments run on."""


@hardware.command("list")
@list_options
@with_client
async def list_hardware(client: AsyncReplicate, out: Output) -> None:
    """List hardware SKUs."""
    await out.items(await client.hardware.list(), HARDWARE_COLUMNS, title="hardware")


@click.command()
@json_option
@with_client
async def account(client: AsyncReplicate, out: Output) -> None:
    """Show the account that owns REPLICATE_API_TOKEN."""
    out.one(await client.account.get(), ACCOUNT_FIELDS)
