"""Outputs saved as they finish: files streamed to a directory, named by the item's key."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from .._workflows.file_outputs import FileOutput

__all__ = ["file_name", "save_output"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def file_name(key: str) -> str:
    """A file name for a key: the key itself when it is a safe name, else its safe
    characters plus a short hash (two keys never share a name)."""
    safe = _UNSAFE.sub("_", key)[:100]
    if safe == key and safe not in ("", ".", ".."):
        return safe
    return f"{safe}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _urls(output: Any) -> list[str]:
    items = output if isinstance(output, list) else [output]
    return [
        item
        for item in items
        if isinstance(item, str) and item.startswith(("https://", "http://", "data:"))
    ]


def _suffix(url: str) -> str:
    if url.startswith("data:"):
        return ""
    return PurePosixPath(urlsplit(url).path).suffix[:16]


async def save_output(
    output: Any, directory: Path, key: str, download: Callable[[str], FileOutput]
) -> tuple[str, ...]:
    """Save ``output``: each file URL streamed to ``<key>[_<n>]<suffix>``; an output with
    no file in it written as ``<key>.json``. Returns the paths written."""
    base = file_name(key)
    urls = _urls(output)
    if not urls:
        path = directory / f"{base}.json"
        await asyncio.to_thread(path.write_text, json.dumps(output), "utf-8")
        return (str(path),)
    saved: list[str] = []
    for index, url in enumerate(urls):
        name = base if len(urls) == 1 else f"{base}_{index}"
        path = directory / f"{name}{_suffix(url)}"
        await download(url).save(path)
        saved.append(str(path))
    return tuple(saved)
