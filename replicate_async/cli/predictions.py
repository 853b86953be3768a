"""``predictions create|get|logs|list|cancel|wait``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ._params import RUN_REF, input_option, json_option, list_options
from ._runtime import CLIError, bounded, with_client
from ._waiting import wait_command

if TYPE_CHECKING:
    from .. import AsyncReplicate
    from ._output import Output

__all__ = ["predictions"]


@click.group()
def predictions() -> None:
    """Create, inspect, follow, wait for and cancel predictions."""


@predictions.command("create")
@click.argument("ref", type=RUN_REF)
@input_option
@click.option(
    "--wait",
    type=click.IntRange(1, 60),
    help="Ask the server to hold the request up to N seconds for the result.",
)
@click.option("--webhook", metavar="URL", help="Notify this https URL of progress.")
@click.option("--deployment", is_flag=True, help="REF names a deployment (OWNER/NAME).")
@json_option
@with_client
async def create(
    client: AsyncReplicate,
    out: Output,
    ref: str,
    input: dict[str, Any],
    wait: int | None,
    webhook: str | None,
    deployment: bool,
) -> None:
    """Create a prediction of REF and print it (does not wait, unless --wait)."""
    from ._formats import PREDICTION_FIELDS
    from ._inputs import model_schema, resolve_inputs
    from ._start import create_prediction

    schema = await model_schema(client, ref, deployment=deployment)
    prediction = await create_prediction(
        client,
        ref,
        deployment=deployment,
        input=resolve_inputs(input, schema),
        wait=wait,
        webhook=webhook,
    )
    out.one(prediction, PREDICTION_FIELDS)


@predictions.command("get")
@click.argument("prediction_id")
@click.option("--web", is_flag=True, help="Open the prediction's page in a browser instead.")
@json_option
@with_client
async def get(client: AsyncReplicate, out: Output, prediction_id: str, web: bool) -> None:
    """Show one prediction, with its logs (all of them when it failed)."""
    from ._formats import PREDICTION_FIELDS
    from ._lifecycle import print_logs
    from ._start import open_web

    prediction = await client.predictions.get(prediction_id)
    if web:
        open_web(out, prediction)
        return
    out.one(prediction, PREDICTION_FIELDS)
    if not out.json:
        print_logs(out, prediction.logs, tail=None if prediction.status == "failed" else 10)


@predictions.command("logs")
@click.argument("prediction_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new logs until it ends.")
@with_client(own_timeout=True)
async def logs(client: AsyncReplicate, out: Output, prediction_id: str, follow: bool) -> None:
    """Print a prediction's logs (with -f, as they come; Ctrl-C stops following only).

    Exits 1 if the prediction ended without succeeding.
    """
    from ._lifecycle import follow_logs

    if follow:
        prediction = await follow_logs(
            client, out, "prediction", prediction_id, timeout=out.timeout
        )
    else:
        prediction = await bounded(client.predictions.get(prediction_id), out, client.base_url)
        if prediction.logs:
            out.write(prediction.logs if prediction.logs.endswith("\n") else prediction.logs + "\n")
    if prediction.status in ("failed", "canceled", "aborted"):
        raise CLIError(f"prediction {prediction.id} {prediction.status}")


@predictions.command("list")
@click.option("--created-after", metavar="ISO8601", help="Only predictions created after this.")
@click.option("--created-before", metavar="ISO8601", help="Only predictions created before this.")
@list_options
@with_client
async def list_predictions(
    client: AsyncReplicate, out: Output, created_after: str | None, created_before: str | None
) -> None:
    """List your predictions, newest first."""
    from ._formats import PREDICTION_COLUMNS

    found = client.predictions.list(created_after=created_after, created_before=created_before)
    await out.items(found, PREDICTION_COLUMNS, title="predictions")


@predictions.command("cancel")
@click.argument("prediction_id")
@json_option
@with_client
async def cancel(client: AsyncReplicate, out: Output, prediction_id: str) -> None:
    """Cancel a prediction (safe to repeat)."""
    from ._formats import PREDICTION_FIELDS

    out.one(await client.predictions.cancel(prediction_id), PREDICTION_FIELDS)


predictions.add_command(wait_command("prediction"))
