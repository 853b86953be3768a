"""``files upload|list|get|delete``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import AsyncReplicate
from ._formats import FILE_COLUMNS, FILE_FIELDS
from ._output import Output
from ._params import confirm_option, json_option, list_options, load_json
from ._runtime import with_client

__all__ = ["files"]


def _metadata(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        data = load_json(value)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object")
    return data


@click.group()
def files() -> None:
    """Upload files once and pass their URL to models (they expire after a day)."""


@files.command("upload")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--content-type", help="Default: guessed from the file name.")
@click.option("--metadata", callback=_metadata, metavar="JSON", help="A JSON object to attach.")
@json_option
@with_client
async def upload(
    client: AsyncReplicate,
    out: Output,
    path: Path,
    content_type: str | None,
    metadata: dict[str, Any] | None,
) -> None:
    """Upload PATH and print the file (its url is what models take)."""
    uploaded = await client.files.create(path, content_type=content_type, metadata=metadata)
    out.one(uploaded, FILE_FIELDS)


@files.command("list")
@list_options
@with_client
async def list_files(client: AsyncReplicate, out: Output) -> None:
    """List your uploaded files, newest first."""
    await out.items(client.files.list(), FILE_COLUMNS, title="files")


@files.command("get")
@click.argument("file_id")
@json_option
@with_client
async def get(client: AsyncReplicate, out: Output, file_id: str) -> None:
    """Show one file."""
    out.one(await client.files.get(file_id), FILE_FIELDS)


@files.command("delete")
@click.argument("file_id")
@confirm_option("file", "file_id")
@with_client
async def delete(client: AsyncReplicate, out: Output, file_id: str) -> None:
    """Delete a file, after a confirmation (or --yes)."""
    await client.files.delete(file_id)
    out.note(f"deleted {file_id}")
