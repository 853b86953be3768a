"""``predictions create|get|list|cancel|wait``."""

from __future__ import annotations

from typing import Any

import click

from .. import AsyncReplicate, Prediction, Status
from ._formats import PREDICTION_COLUMNS, PREDICTION_FIELDS
from ._output import Output
from ._params import RUN_REF, input_option, json_option, list_options
from ._runtime import CLIError, with_client

__all__ = ["create_prediction", "predictions"]


@click.group()
def predictions() -> None:
    """Create, inspect, list, wait for and cancel predictions."""


async def create_prediction(
    client: AsyncReplicate,
    ref: str,
    *,
    deployment: bool,
    input: dict[str, Any],
    wait: int | None = None,
    webhook: str | None = None,
) -> Prediction:
    """Create a prediction on a model (``owner/name``), a version, or a deployment."""
    options: dict[str, Any] = {"input": input, "wait": wait, "webhook": webhook}
    if deployment:
        return await client.deployments.predictions.create(ref, **options)
    if ":" in ref or "/" not in ref:
        return await client.predictions.create(version=ref, **options)
    return await client.models.predictions.create(ref, **options)


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
    prediction = await create_prediction(
        client, ref, deployment=deployment, input=input, wait=wait, webhook=webhook
    )
    out.one(prediction, PREDICTION_FIELDS)


@predictions.command("get")
@click.argument("prediction_id")
@json_option
@with_client
async def get(client: AsyncReplicate, out: Output, prediction_id: str) -> None:
    """Show one prediction."""
    out.one(await client.predictions.get(prediction_id), PREDICTION_FIELDS)


@predictions.command("list")
@click.option("--created-after", metavar="ISO8601", help="Only predictions created after this.")
@click.option("--created-before", metavar="ISO8601", help="Only predictions created before this.")
@list_options
@with_client
async def list_predictions(
    client: AsyncReplicate, out: Output, created_after: str | None, created_before: str | None
) -> None:
    """List your predictions, newest first."""
    found = client.predictions.list(created_after=created_after, created_before=created_before)
    await out.items(found, PREDICTION_COLUMNS, title="predictions")


@predictions.command("cancel")
@click.argument("prediction_id")
@json_option
@with_client
async def cancel(client: AsyncReplicate, out: Output, prediction_id: str) -> None:
    """Cancel a prediction (safe to repeat)."""
    out.one(await client.predictions.cancel(prediction_id), PREDICTION_FIELDS)


@predictions.command("wait")
@click.argument("prediction_id")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Give up (and cancel the prediction) after this many seconds.",
)
@click.option(
    "--keep-running", is_flag=True, help="On timeout or Ctrl-C, leave the prediction running."
)
@json_option
@with_client
async def wait(
    client: AsyncReplicate,
    out: Output,
    prediction_id: str,
    timeout: float | None,
    keep_running: bool,
) -> None:
    """Wait until a prediction finishes and print it; exit 1 unless it succeeded.

    On timeout or Ctrl-C the prediction is canceled on the server (see --keep-running).
    """
    if not keep_running:
        out.canceling = "Canceling the prediction on the server…"
    out.interrupted = "Interrupted: the prediction was canceled on the server."
    with out.err.status(f"Waiting for {prediction_id}…"):
        prediction = await client.predictions.wait(
            prediction_id, timeout=timeout, cancel_on_abandon=not keep_running
        )
    out.one(prediction, PREDICTION_FIELDS)
    if prediction.status != Status.SUCCEEDED:
        raise CLIError(f"prediction {prediction.id} ended {prediction.status}")
