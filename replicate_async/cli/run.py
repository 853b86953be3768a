"""``run OWNER/NAME[:VERSION] -i key=value ...``: run a model and print (or save) its output."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._inputs import model_schema, resolve_inputs
from ._params import RUN_REF, input_option, json_option
from ._runtime import CLIError, with_client

if TYPE_CHECKING:
    from .. import AsyncReplicate, Prediction
    from ._output import Output

__all__ = ["print_output", "run"]

#: The default ``Prefer: wait`` hold. Short, because a prediction's id (needed to cancel
#: it on Ctrl-C) is only known once the server answers the held create request.
HOLD = 3


def print_output(out: Output, output: Any) -> None:
    """An output: JSON with ``--json``; else strings as they are, lists one item a line."""
    if out.json:
        out.emit_json(output)
        return
    from ._saver import shorten_data_urls

    shown = shorten_data_urls(output, "; -o DIR saves it") if out.tty else output
    items = shown if isinstance(shown, list) else [shown]
    for item in items:
        text = item if isinstance(item, str) else json.dumps(item, indent=2, ensure_ascii=False)
        out.write(f"{text}\n")


async def _shaped(
    client: AsyncReplicate, ref: str, deployment: bool, schema: Any, output: Any
) -> Any:
    """A language model's list of tokens joined into its text (as its schema asks)."""
    if not (isinstance(output, list) and output and all(isinstance(i, str) for i in output)):
        return output
    from .._checks.schema import output_schema, shape_output
    from ..exceptions import ReplicateError

    if schema is None:
        try:
            schema = await model_schema(client, ref, deployment=deployment)
        except ReplicateError:
            return output
    return shape_output(output_schema(schema), output, document=schema)


async def _finish(
    client: AsyncReplicate,
    out: Output,
    final: Prediction,
    shape: Any,
    output_dir: Path | None,
) -> None:
    from ._lifecycle import print_logs
    from ._saver import save_outputs

    if final.status != "succeeded":
        if final.status == "failed":
            print_logs(out, final.logs, tail=20)
        error = f": {final.error}" if final.error else ""
        raise CLIError(f"prediction {final.id} {final.status}{error}")
    output = final.output
    if not out.json:
        try:
            output = await shape(final.output)
        except Exception:  # joining tokens is cosmetic: never lose a paid output over it
            out.note("(the output is shown as the API sent it)")
    saved_where_asked = True
    if output_dir is not None:
        output, saved_where_asked = await save_outputs(client, out, output, output_dir, final.id)
    print_output(out, output)
    if not saved_where_asked:
        raise CLIError(f"could not save into {output_dir} (see above; nothing was lost)")


def _print_detached(out: Output, prediction: Prediction) -> None:
    """``--detach``: the id (or the prediction with ``--json``), and how to follow it."""
    if out.json:
        out.emit_json(prediction)
        return
    out.write(f"{prediction.id}\n")
    out.note(f"follow it with: replicate-async predictions logs -f {prediction.id}")


@click.command("run")
@click.argument("ref", type=RUN_REF)
@input_option
@click.option("--stream", is_flag=True, help="Print the output as it is generated (SSE).")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Save file outputs under DIR/<prediction id>/ (never overwrites).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="One deadline in seconds for the whole run; then it is canceled on the server.",
)
@click.option(
    "--wait",
    type=click.IntRange(0, 60),
    default=HOLD,
    show_default=True,
    help="Seconds the server may hold the create request (Prefer: wait) before polling "
    "(0: poll at once); Ctrl-C takes effect once the server has answered it.",
)
@click.option("--deployment", is_flag=True, help="REF names a deployment (OWNER/NAME).")
@click.option("--detach", is_flag=True, help="Start the prediction, print its id and leave.")
@click.option("--web", is_flag=True, help="Open the prediction's page in a browser too.")
@json_option
@with_client(own_timeout=True)
async def run(
    client: AsyncReplicate,
    out: Output,
    ref: str,
    input: dict[str, Any],
    stream: bool,
    output_dir: Path | None,
    timeout: float | None,
    wait: int,
    deployment: bool,
    detach: bool,
    web: bool,
) -> None:
    """Run a model and print its output.

    REF is OWNER/NAME (an official model), OWNER/NAME:VERSION or a version id. Ctrl-C
    (or --timeout) cancels the prediction on the server, so it stops billing; a second
    Ctrl-C stops waiting for that cancel. A language model's tokens are joined into text.

    \b
      replicate-async run fake/upper -i text="hello world"
      replicate-async run fake/tokens -i prompt="once upon a time" --stream
      replicate-async run fake/image -i prompt=cat -i num_outputs:=2 -o out/
      replicate-async run fake/slow -i text=zzz --detach
    """
    from ._lifecycle import wait_for_run
    from ._start import open_web, start_prediction, stream_prediction

    timeout = timeout if timeout is not None else out.timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout if timeout is not None else None
    schema = await model_schema(client, ref, deployment=deployment)
    checked = resolve_inputs(input, schema)
    hold = 0 if detach or stream else wait
    if timeout is not None:
        hold = min(hold, int(timeout // 2))  # leave time to learn the id, to cancel it
    started = loop.time()  # one clock for the spinner, across the held create and the wait
    prediction = await start_prediction(
        client, out, ref, deployment=deployment, input=checked,
        hold=hold, stream=stream, timeout=timeout, since=started,
    )  # fmt: skip
    if web:
        open_web(out, prediction)
    if detach:
        _print_detached(out, prediction)
        return
    remaining = deadline - loop.time() if deadline is not None else None
    if stream:
        await stream_prediction(client, out, prediction, output_dir, remaining, timeout)
        return
    final = await wait_for_run(
        client, out, prediction, timeout=remaining, label=f"Running {ref}:",
        announced=timeout, since=started,
    )  # fmt: skip

    async def shape(output: Any) -> Any:
        return await _shaped(client, ref, deployment, schema, output)

    await _finish(client, out, final, shape, output_dir)
