"""``-o DIR``: file outputs saved under ``DIR/<prediction id>/``, never lost.

Each prediction gets its own folder, so reusing ``-o DIR`` never overwrites an earlier
result and never leaves a stale ``output-1.png`` next to a newer ``output-0.png``. When
``DIR`` cannot be written (read-only, full disk), the files go to a fresh temporary
folder instead and the command says where; if even that fails, their URLs are printed,
so a paid result is never thrown away.
"""

from __future__ import annotations

import asyncio
import itertools
import mimetypes
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from .. import AsyncReplicate
    from ._output import Output

__all__ = ["OutputSaver", "output_filename", "save_outputs", "shorten_data_urls"]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def output_filename(url: str, index: int) -> str:
    """A file name for an output URL: its own for http(s), ``output-N.ext`` for ``data:``."""
    if url.startswith("data:"):
        ctype = url[5:].split(";", 1)[0].split(",", 1)[0]
        ext = mimetypes.guess_extension(ctype) if ctype else None
        return f"output-{index}{ext or '.bin'}"
    name = _SAFE_NAME.sub("_", PurePosixPath(unquote(urlsplit(url).path)).name).strip("._")
    return name or f"output-{index}"


def _is_file_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://", "data:"))


class OutputSaver:
    """Saves file URLs found in an output under one directory, with distinct names."""

    def __init__(self, client: AsyncReplicate, directory: Path) -> None:
        self.client = client
        self.directory = directory
        self._counter = itertools.count()
        self._used: set[str] = set()

    async def save_one(self, url: str) -> str:
        """Download one URL into the directory; return the path."""
        index = next(self._counter)
        name = output_filename(url, index)
        if name in self._used:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem}-{index}.{ext}" if dot and stem else f"{name}-{index}"
        self._used.add(name)
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        return str(await self.client.file_output(url).save(self.directory / name))

    async def save(self, value: Any) -> Any:
        """Save every file URL in ``value``; their paths replace them."""
        if _is_file_url(value):
            return await self.save_one(value)
        if isinstance(value, list):
            return [await self.save(item) for item in value]
        if isinstance(value, dict):
            return {key: await self.save(item) for key, item in value.items()}
        return value


def shorten_data_urls(value: Any, hint: str = "") -> Any:
    """Long ``data:`` URLs cut for a terminal or a message (http ones are kept whole)."""
    if isinstance(value, str) and value.startswith("data:") and len(value) > 80:
        return value[:60] + f"… ({len(value)} chars{hint})"
    if isinstance(value, list):
        return [shorten_data_urls(item, hint) for item in value]
    if isinstance(value, dict):
        return {key: shorten_data_urls(item, hint) for key, item in value.items()}
    return value


async def save_outputs(
    client: AsyncReplicate, out: Output, output: Any, directory: Path, run_id: str
) -> tuple[Any, bool]:
    """Save ``output``'s files under ``directory/run_id``; return ``(paths, saved_where_asked)``.

    Falls back to a temporary folder when ``directory`` cannot be written; returns the
    output unchanged (its URLs) if nothing could be written at all.
    """
    from ..exceptions import ReplicateError
    from ._errors import describe_error

    try:
        return await OutputSaver(client, directory / run_id).save(output), True
    except OSError as exc:
        out.say(f"cannot write to {directory}: {exc.strerror or exc}")
    except ReplicateError as exc:
        out.say(
            f"could not download the outputs of prediction {run_id} ({describe_error(exc)}); "
            f"they are at: {shorten_data_urls(output)}"
        )
        return output, False
    try:
        fallback = Path(tempfile.mkdtemp(prefix=f"replicate-{run_id}-"))
        saved = await OutputSaver(client, fallback).save(output)
    except OSError as exc:
        out.say(
            f"cannot write a temporary folder either ({exc.strerror or exc}); "
            f"the outputs of prediction {run_id} are at: {shorten_data_urls(output)}"
        )
        return output, False
    out.say(f"saved the outputs of prediction {run_id} in {fallback} instead")
    return saved, False
