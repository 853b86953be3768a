"""``trainings create|list|get|cancel|wait``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ._params import MODEL_REF, RUN_REF, input_option, json_option, list_options
from ._runtime import CLIError, with_client
from ._waiting import wait_command

if TYPE_CHECKING:
    from .. import AsyncReplicate
    from ._output import Output

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
    """Start a training of OWNER/NAME:VERSION into --destination.

    The version and the destination model are looked up first, so a missing one is
    named as such; the inputs are checked against the version's TrainingInput schema
    when it has one.
    """
    from ..exceptions import NotFoundError
    from ._errors import describe_error
    from ._formats import TRAINING_FIELDS
    from ._inputs import model_schema, resolve_inputs, training_schema

    schema = await model_schema(client, model, deployment=False) if ":" in model else None
    try:
        await client.models.get(destination)
    except NotFoundError as exc:
        subject = f"the destination model {destination}"
        raise CLIError(
            f"{describe_error(exc, client.base_url, subject=subject)}; create it first "
            "(https://replicate.com/create), then train into it"
        ) from None
    training = await client.trainings.create(
        model,
        destination=destination,
        input=resolve_inputs(input, training_schema(schema)),
        webhook=webhook,
    )
    out.one(training, TRAINING_FIELDS)


@trainings.command("list")
@list_options
@with_client
async def list_trainings(client: AsyncReplicate, out: Output) -> None:
    """List your trainings, newest first."""
    from ._formats import TRAINING_COLUMNS

    await out.items(client.trainings.list(), TRAINING_COLUMNS, title="trainings")


@trainings.command("get")
@click.argument("training_id")
@json_option
@with_client
async def get(client: AsyncReplicate, out: Output, training_id: str) -> None:
    """Show one training, with its logs (all of them when it failed)."""
    from ._formats import TRAINING_FIELDS
    from ._lifecycle import print_logs

    training = await client.trainings.get(training_id)
    out.one(training, TRAINING_FIELDS)
    if not out.json:
        print_logs(out, training.logs, tail=None if training.status == "failed" else 10)


@trainings.command("cancel")
@click.argument("training_id")
@json_option
@with_client
async def cancel(client: AsyncReplicate, out: Output, training_id: str) -> None:
    """Cancel a training (safe to repeat)."""
    from ._formats import TRAINING_FIELDS

    out.one(await client.trainings.cancel(training_id), TRAINING_FIELDS)


trainings.add_command(wait_command("training"))
