"""``batch run|resume|status|retry|cancel|export``: durable batches on the command line.

The ledger is a SQLite file (``--store batch.db``) or a Redis URL (``redis://host/0#name``):
Ctrl-C (or a crash) leaves it as it was, and ``batch resume`` carries on without creating
any item twice.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._params import json_option
from ._runtime import CLIError, with_client

if TYPE_CHECKING:
    from .. import AsyncReplicate
    from ..batch import Batch
    from ._output import Output

__all__ = ["batch"]

_STORE = click.option(
    "--store",
    required=True,
    metavar="PATH|URL",
    help="The ledger: a SQLite file (made if missing) or redis://HOST[:PORT]/DB#NAME.",
)
#: Seconds between two redraws of the progress line, at least; and at least this many
#: times what the last status took (it counts the whole ledger: 100,000 items take tens of
#: milliseconds, which the batch should not spend four times a second).
_REDRAW = 0.25
_REDRAW_COST = 20


@click.group("batch")
def batch() -> None:
    """Run a model over many inputs, in a ledger that survives Ctrl-C and crashes.

    \b
      replicate-async batch run fake/echo inputs.jsonl --key id --store batch.db -o results.jsonl
      replicate-async batch status --store batch.db
      replicate-async batch resume --store batch.db
    """


async def _drive(out: Output, job: Batch, store: str, results: Path | None) -> None:
    """Run ``job``: a progress line on a terminal, one JSON line per item in a pipe."""
    import asyncio

    from ._runtime import Interrupted

    progress = out.err_tty and not out.json
    try:
        await _items(out, job, progress)
    except asyncio.CancelledError:
        if progress:
            sys.stderr.write("\n")
        if not out.interrupts.count:
            raise
        raise Interrupted(
            f"Interrupted: the batch is kept in {store}. Resume it with: "
            f"replicate-async batch resume --store {store}"
        ) from None
    status = await job.status()
    if progress:
        sys.stderr.write("\r\x1b[2K")
    tally = job.tally
    if tally.reattached or tally.adopted or tally.recreated:
        out.say(
            f"resumed: {tally.reattached} running predictions re-attached by id, "
            f"{tally.adopted} lost creates found on the server and adopted, "
            f"{tally.recreated} sent again (the server had made nothing for them)"
        )
    out.say(status.line())
    if results is not None:
        count = await job.export(results)
        out.note(f"{count} results written to {results}")
    if status.counts.get("unresolved"):
        out.note(
            "unresolved items: their create may have reached Replicate; check them "
            f"(batch export), then: replicate-async batch retry --unresolved --store {store}"
        )
    if not status.complete or status.counts.get("failed"):
        raise CLIError(f"{status.total - status.counts.get('succeeded', 0)} items did not succeed")


async def _items(
    out: Output, job: Batch, progress: bool, *, clock: Callable[[], float] = time.monotonic
) -> None:
    """Each finished item: a JSON line, or a redraw of the progress line (at most every
    ``_REDRAW`` seconds, and never more than a twentieth of the time in status)."""
    next_redraw = 0.0
    async for item in job:
        if not progress:
            out.emit_json(item.to_json())
        elif clock() >= next_redraw:
            start = clock()
            line = (await job.status()).line()
            took = clock() - start
            next_redraw = start + max(_REDRAW, _REDRAW_COST * took)
            sys.stderr.write(f"\r\x1b[2K{line}")
            sys.stderr.flush()


def _job(client: AsyncReplicate, ref: str | None, inputs: Any, store: str, **options: Any) -> Batch:
    from ..exceptions import InvalidArgumentError

    try:
        return client.batch(ref, inputs, store=store, **options)
    except (InvalidArgumentError, TypeError) as exc:
        raise click.UsageError(str(exc)) from None


_RUN_OPTIONS = [
    click.option(
        "-c", "--concurrency", type=click.IntRange(1, 1000), default=32, show_default=True
    ),
    click.option(
        "--out-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Save each output as it finishes, named by its key.",
    ),
    click.option(
        "-o",
        "--output",
        "results",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write every result as a JSON line keyed by the input's key, at the end.",
    ),
]


def _run_options(fn: Any) -> Any:
    for option in reversed(_RUN_OPTIONS):
        fn = option(fn)
    return fn


@batch.command("run")
@click.argument("ref")
@click.argument("inputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", default="id", show_default=True, help="The field that names each input.")
@_STORE
@_run_options
@json_option
@with_client(own_timeout=True)
async def run(
    client: AsyncReplicate,
    out: Output,
    ref: str,
    inputs: Path,
    key: str,
    store: str,
    concurrency: int,
    out_dir: Path | None,
    results: Path | None,
) -> None:
    """Run REF over every line of INPUTS (a JSONL file of input objects).

    Adding the same file again is harmless: a key already in the ledger is skipped.
    """
    job = _job(client, ref, inputs, store, key=key, concurrency=concurrency, out_dir=out_dir)
    await _drive(out, job, store, results)


@batch.command("resume")
@_STORE
@_run_options
@json_option
@with_client(own_timeout=True)
async def resume(
    client: AsyncReplicate,
    out: Output,
    store: str,
    concurrency: int,
    out_dir: Path | None,
    results: Path | None,
) -> None:
    """Carry on with a batch: running predictions are re-attached, lost answers found."""
    job = _job(client, None, None, store, concurrency=concurrency, out_dir=out_dir)
    await _drive(out, job, store, results)


@batch.command("status")
@_STORE
@json_option
@with_client
async def status(client: AsyncReplicate, out: Output, store: str) -> None:
    """Counts by state, rate, ETA and predict seconds spent."""
    async with _job(client, None, None, store) as job:
        found = await job.status()
    if out.json:
        out.emit_json(found.to_json())
    else:
        out.write(found.line() + "\n")


@batch.command("retry")
@_STORE
@click.option("--failed", "failed_only", is_flag=True, help="Only failed items (not canceled).")
@click.option(
    "--unresolved",
    is_flag=True,
    help="Also items whose earlier create could not be proved absent (may pay twice).",
)
@with_client
async def retry(
    client: AsyncReplicate, out: Output, store: str, failed_only: bool, unresolved: bool
) -> None:
    """Put failed (and canceled) items back to pending; then run `batch resume`."""
    async with _job(client, None, None, store) as job:
        count = await job.retry(failed_only, unresolved=unresolved)
    out.say(f"{count} items back to pending; run: replicate-async batch resume --store {store}")


@batch.command("cancel")
@_STORE
@with_client
async def cancel(client: AsyncReplicate, out: Output, store: str) -> None:
    """Cancel the batch: pending items are dropped, running predictions canceled once."""
    async with _job(client, None, None, store) as job:
        count = await job.cancel()
        line = (await job.status()).line()
    out.say(f"{count} running predictions canceled; {line}")


@batch.command("export")
@_STORE
@click.option(
    "-o",
    "--output",
    "results",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (default: stdout).",
)
@with_client
async def export(client: AsyncReplicate, out: Output, store: str, results: Path | None) -> None:
    """Every item as a JSON line keyed by its input's key."""
    async with _job(client, None, None, store) as job:
        if results is not None:
            count = await job.export(results)
            out.note(f"{count} results written to {results}")
            return
        async for item in job.items():
            out.emit_json(item.to_json())
