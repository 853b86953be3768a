"""``predictions wait`` and ``trainings wait``: one command, made for each kind of run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import click

from ._params import json_option
from ._runtime import CLIError, with_client

if TYPE_CHECKING:
    from .. import AsyncReplicate
    from ._output import Output

__all__ = ["wait_command"]


def wait_command(kind: Literal["prediction", "training"]) -> click.Command:
    """``wait ID [--timeout S] [--keep-running]`` for predictions or trainings."""

    @click.command("wait")
    @click.argument("run_id", metavar=f"{kind.upper()}_ID")
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        help=f"Give up (and cancel the {kind}) after this many seconds.",
    )
    @click.option(
        "--keep-running", is_flag=True, help=f"On timeout or Ctrl-C, leave the {kind} running."
    )
    @json_option
    @with_client(own_timeout=True)
    async def wait(
        client: AsyncReplicate,
        out: Output,
        run_id: str,
        timeout: float | None,
        keep_running: bool,
    ) -> None:
        from ._formats import PREDICTION_FIELDS, TRAINING_FIELDS
        from ._lifecycle import wait_for_run

        resource = client.predictions if kind == "prediction" else client.trainings
        started = await resource.get(run_id)
        limit = timeout if timeout is not None else out.timeout
        final = await wait_for_run(client, out, started, timeout=limit, keep_running=keep_running)
        out.one(final, PREDICTION_FIELDS if kind == "prediction" else TRAINING_FIELDS)
        if final.status != "succeeded":
            raise CLIError(f"{kind} {final.id} ended {final.status}")

    wait.help = (
        f"Wait until a {kind} finishes and print it; exit 1 unless it succeeded.\n\n"
        f"On timeout or Ctrl-C the {kind} is canceled on the server (see --keep-running)."
    )
    return wait
