"""``deployments list|get|create|update|delete``."""

from __future__ import annotations

import click

from .. import AsyncReplicate
from ._formats import DEPLOYMENT_COLUMNS, DEPLOYMENT_FIELDS
from ._output import Output
from ._params import MODEL_REF, confirm_option, json_option, list_options
from ._runtime import with_client

__all__ = ["deployments"]

_MIN = click.IntRange(0, 5)
_MAX = click.IntRange(0, 20)


@click.group()
def deployments() -> None:
    """A fixed model version on dedicated, autoscaled hardware."""


@deployments.command("list")
@list_options
@with_client
async def list_deployments(client: AsyncReplicate, out: Output) -> None:
    """List your deployments."""
    await out.items(client.deployments.list(), DEPLOYMENT_COLUMNS, title="deployments")


@deployments.command("get")
@click.argument("deployment", type=MODEL_REF)
@json_option
@with_client
async def get(client: AsyncReplicate, out: Output, deployment: str) -> None:
    """Show a deployment (OWNER/NAME) and its current release."""
    out.one(await client.deployments.get(deployment), DEPLOYMENT_FIELDS)


@deployments.command("create")
@click.option("--name", required=True, help="The deployment's name (under your account).")
@click.option("--model", required=True, type=MODEL_REF, help="The model to deploy.")
@click.option("--version", required=True, help="The model version id to deploy.")
@click.option("--hardware", required=True, help="A SKU from `hardware list`.")
@click.option("--min-instances", type=_MIN, default=0, show_default=True)
@click.option("--max-instances", type=_MAX, default=1, show_default=True)
@json_option
@with_client
async def create(
    client: AsyncReplicate,
    out: Output,
    name: str,
    model: str,
    version: str,
    hardware: str,
    min_instances: int,
    max_instances: int,
) -> None:
    """Create a deployment."""
    created = await client.deployments.create(
        name=name,
        model=model,
        version=version,
        hardware=hardware,
        min_instances=min_instances,
        max_instances=max_instances,
    )
    out.one(created, DEPLOYMENT_FIELDS)


@deployments.command("update")
@click.argument("deployment", type=MODEL_REF)
@click.option("--version", help="Deploy this model version id.")
@click.option("--hardware", help="Move to this SKU.")
@click.option("--min-instances", type=_MIN)
@click.option("--max-instances", type=_MAX)
@json_option
@with_client
async def update(
    client: AsyncReplicate,
    out: Output,
    deployment: str,
    version: str | None,
    hardware: str | None,
    min_instances: int | None,
    max_instances: int | None,
) -> None:
    """Change a deployment (OWNER/NAME); any change makes a new release."""
    updated = await client.deployments.update(
        deployment,
        version=version,
        hardware=hardware,
        min_instances=min_instances,
        max_instances=max_instances,
    )
    out.one(updated, DEPLOYMENT_FIELDS)


@deployments.command("delete")
@click.argument("deployment", type=MODEL_REF)
@confirm_option("deployment", "deployment")
@with_client
async def delete(client: AsyncReplicate, out: Output, deployment: str) -> None:
    """Delete a deployment (OWNER/NAME), after a confirmation (or --yes)."""
    await client.deployments.delete(deployment)
    out.note(f"deleted {deployment}")
