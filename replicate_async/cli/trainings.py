"""``trainings create|list|get|cancel``."""

from __future__ import annotations

from typing import Any

import click

from .. import AsyncReplicate
from ._formats import TRAINING_COLUMNS, TRAINING_FIELDS
from ._output import Output
from ._params import MODEL_REF, RUN_REF, input_option, json_option, list_options
from ._runtime import with_client

__all__ = ["trainings"]


@click.group()
def trainings() -> None:
    """Fine-tune a model version into a new version of your own model."""


@trainings.command("create")
@click.argument("model", type=RUN_REF, metavar="OWNER/NAME:VERSION")
@click.option(
    "--destination", required=True, type=MODEL_REF, help="Your model that gets the new version."
)
@input_option
@click.option("--webhook", metavar="URL", help="Notify this https URL of progress.")
@json_option
@with_client
async def create(
    client: AsyncReplicate,
    out: Output,
    model: str,
    destination: str,
    input: dict[str, Any],
    webhook: str | None,
) -> None:
    """Start a training of OWNER/NAME:VERSION into --destination."""
    training = await client.trainings.create(
        model, destination=destination, input=input, webhook=webhook
    )
    out.one(training, TRAINING_FIELDS)


@trainings.command("list")
@list_options
@with_client
async def list_trainings(client: AsyncReplicate, out: Output) -> None:
    """List your trainings, newest first."""
    await out.items(client.trainings.list(), TRAINING_COLUMNS, title="trainings")


@trainings.command("get")
@click.argument("training_id")
@json_option
@with_client
async def get(client: AsyncReplicate, out: Output, training_id: str) -> None:
    """Show one training."""
    out.one(await client.trainings.get(training_id), TRAINING_FIELDS)


@trainings.command("cancel")
@click.argument("training_id")
@json_option
@with_client
async def cancel(client: AsyncReplicate, out: Output, training_id: str) -> None:
    """Cancel a training (safe to repeat)."""
    out.one(await client.trainings.cancel(training_id), TRAINING_FIELDS)
