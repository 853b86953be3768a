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


def _signed_link(target: str) -> tuple[str, dict[str, str]]:
    """``ID`` -> ``(ID, {})``; a signed download URL -> its id and its query."""
    from urllib.parse import parse_qs, urlsplit

    if not target.startswith(("https://", "http://")):
        return target, {}
    parts = urlsplit(target)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 3 or segments[-1] != "download" or segments[-3] != "files":
        raise click.BadParameter(
            "a URL must be a signed download link: .../files/ID/download?owner=…&expiry=…"
            "&signature=…"
        )
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    return segments[-2], query


@files.command("download")
@click.argument("target", metavar="FILE_ID|SIGNED_URL")
@click.option("--owner", help="The file's owner (default: your account, or the URL's).")
@click.option("--expiry", type=int, help="The signed link's expiry (unix seconds).")
@click.option("--signature", help="The signed link's signature.")
@click.option(
    "-o",
    "--output",
    "path",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Where to write it ('-': stdout; default: the file's name, never overwritten).",
)
@with_client
async def download(
    client: AsyncReplicate,
    out: Output,
    target: str,
    owner: str | None,
    expiry: int | None,
    signature: str | None,
    path: Path | None,
) -> None:
    """Download a file's bytes through a signed link: give the link itself, or the
    file's id with --expiry and --signature."""
    import asyncio

    from ..exceptions import NotFoundError
    from ._errors import describe_error
    from ._runtime import ArgumentError, CLIError
    from ._saver import output_filename

    file_id, query = _signed_link(target)
    signature = signature or query.get("signature")
    expiry_text = str(expiry) if expiry is not None else query.get("expiry")
    if not signature or not expiry_text or not expiry_text.lstrip("-").isdigit():
        raise ArgumentError("a download needs the link's --expiry and --signature")
    owner = owner or query.get("owner") or (await client.account.get()).username
    if not owner:
        raise ArgumentError("a download needs the file's --owner")
    if path is None:
        name = (await client.files.get(file_id)).name or file_id
        path = Path(output_filename(f"https://x/{name}", 0))
    try:
        data = await client.files.download(
            file_id, owner=owner, expiry=int(expiry_text), signature=signature
        )
    except NotFoundError as exc:
        raise CLIError(
            describe_error(exc, client.base_url, subject=f"file {file_id}")
            + " (or the link's owner, expiry or signature is wrong, or it expired)"
        ) from None
    if str(path) == "-":
        out.write_bytes(data)
        return
    try:
        await asyncio.to_thread(_write_new, path, data)
    except FileExistsError:
        raise ArgumentError(f"{path} exists already (choose another with -o PATH)") from None
    out.note(f"saved {len(data):,} bytes in {path}")


def _write_new(path: Path, data: bytes) -> None:
    """Write a file that must not exist yet (never overwrites)."""
    with path.open("xb") as file:
        file.write(data)
