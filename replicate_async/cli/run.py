"""``run OWNER/NAME[:VERSION] -i key=value ...``: run a model and print (or save) its output."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import mimetypes
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import click
from rich.console import Console

from .. import AsyncReplicate, FileOutput
from ._output import Output
from ._params import RUN_REF, input_option, json_option
from ._runtime import CLIError, with_client

__all__ = ["OutputSaver", "output_filename", "run"]

#: The default ``Prefer: wait`` hold. Short, because a prediction's id (needed to cancel
#: it on Ctrl-C) is only known once the server answers the held create request.
HOLD = 3
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def output_filename(url: str, index: int) -> str:
    """A file name for an output URL: its own for http(s), ``output-N.ext`` for ``data:``."""
    if url.startswith("data:"):
        ctype = url[5:].split(";", 1)[0].split(",", 1)[0]
        ext = mimetypes.guess_extension(ctype) if ctype else None
        return f"output-{index}{ext or '.bin'}"
    name = _SAFE_NAME.sub("_", PurePosixPath(unquote(urlsplit(url).path)).name).strip("._")
    return name or f"output-{index}"


class OutputSaver:
    """Saves :class:`FileOutput` objects under one directory with distinct names."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._counter = itertools.count()
        self._used: set[str] = set()

    async def save(self, value: Any) -> Any:
        """Save every :class:`FileOutput` in ``value``; their paths (as str) replace them."""
        if isinstance(value, FileOutput):
            index = next(self._counter)
            name = output_filename(value.url, index)
            if name in self._used:
                stem, dot, ext = name.rpartition(".")
                name = f"{stem}-{index}.{ext}" if dot and stem else f"{name}-{index}"
            self._used.add(name)
            await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
            return str(await value.save(self.directory / name))
        if isinstance(value, list):
            return [await self.save(item) for item in value]
        if isinstance(value, dict):
            return {key: await self.save(item) for key, item in value.items()}
        return value


def _shorten(value: Any) -> Any:
    """Long ``data:`` URLs cut for the terminal (``-o DIR`` saves the files)."""
    if isinstance(value, str) and value.startswith("data:") and len(value) > 80:
        return value[:60] + f"… ({len(value)} chars; -o DIR saves it)"
    if isinstance(value, list):
        return [_shorten(item) for item in value]
    if isinstance(value, dict):
        return {key: _shorten(item) for key, item in value.items()}
    return value


def print_output(out: Output, output: Any) -> None:
    """Print an output: JSON with ``--json``; else strings as-is, lists one item a line."""
    if out.json:
        out.emit_json(output)
        return
    shown = _shorten(output)
    items = shown if isinstance(shown, list) else [shown]
    for item in items:
        text = item if isinstance(item, str) else json.dumps(item, indent=2, ensure_ascii=False)
        click.echo(text)


@contextlib.contextmanager
def live_status(console: Console, text: str) -> Iterator[None]:
    """A spinner with the elapsed time on stderr (silent when stderr is not a terminal)."""
    start = time.monotonic()
    with console.status(text) as status:

        async def tick() -> None:
            while True:
                await asyncio.sleep(0.1)
                status.update(f"{text} [dim]{time.monotonic() - start:.1f}s[/dim]")

        ticker = asyncio.ensure_future(tick())
        try:
            yield
        finally:
            ticker.cancel()


async def _stream(
    client: AsyncReplicate,
    out: Output,
    target: dict[str, Any],
    input: dict[str, Any],
    output_dir: Path | None,
) -> None:
    events: AsyncIterator[Any] = client.stream(**target, input=input)
    saver = OutputSaver(output_dir) if output_dir is not None else None
    wrote = False
    async for event in events:
        if out.json:
            out.emit_json({"event": event.event, "id": event.id, "data": event.data})
            continue
        if event.event != "output":
            continue
        data = event.data
        if saver is not None and data.startswith(("https://", "http://", "data:")):
            click.echo(await saver.save(client.file_output(data)))
            continue
        out.console.file.write(data)
        out.console.file.flush()
        wrote = True
    if wrote:
        click.echo()


@click.command("run")
@click.argument("ref", type=RUN_REF)
@input_option
@click.option("--stream", is_flag=True, help="Print the output as it is generated (SSE).")
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Save file outputs into this directory.",
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
@json_option
@with_client
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
) -> None:
    """Run a model and print its output.

    REF is OWNER/NAME (an official model), OWNER/NAME:VERSION or a version id. Ctrl-C
    (or --timeout) cancels the prediction on the server, so it stops billing.

    \b
      replicate-async run fake/upper -i text="hello world"
      replicate-async run fake/tokens -i prompt="once upon a time" --stream
      replicate-async run fake/image -i prompt=cat -i num_outputs=2 -o out/
    """
    out.canceling = "Canceling the prediction on the server…"
    out.interrupted = "Interrupted: the prediction was canceled on the server."
    target: dict[str, Any] = {"deployment": ref} if deployment else {"ref": ref}
    if stream:
        try:
            async with asyncio.timeout(timeout):
                await _stream(client, out, target, input, output_dir)
        except TimeoutError:
            raise CLIError(
                f"no result within {timeout:g}s; the prediction was canceled on the server"
            ) from None
        return
    if timeout is not None and wait > timeout / 2:
        # Leave the deadline room to learn the prediction's id, so it can be canceled.
        wait = int(timeout // 2)
    with live_status(out.err, f"Running {ref}…"):
        output = await client.run(
            **target,
            input=input,
            timeout=timeout,
            wait=wait or False,
            use_file_output=output_dir is not None,
        )
    if output_dir is not None:
        output = await OutputSaver(output_dir).save(output)
    print_output(out, output)
