"""Printing results: rich tables for people, JSON lines for programs.

With ``--json`` every object is printed as one line of JSON, exactly the object the API
sent (its ``raw`` form), and lists are streamed: each item is printed as soon as its page
arrives, so ``replicate-async models list --json | head`` fetches one page only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs
from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["DEFAULT_TABLE_LIMIT", "Column", "Output", "cell", "to_json"]

T = TypeVar("T")

#: Rows a table shows when ``--limit`` is not given (``--limit 0`` shows everything).
DEFAULT_TABLE_LIMIT = 50


@attrs.frozen
class Column(Generic[T]):
    """One column of a table (or one line of a detail view): a header and a getter.

    A column with a ``max_width`` gives way (truncated with "…") when the table is too
    wide for the terminal; the others keep their full width.
    """

    header: str
    get: Callable[[T], Any]
    max_width: int | None = None


def cell(value: Any) -> str:
    """A value as table text: ``None`` is blank, times are second-precision UTC."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def to_json(obj: Any) -> Any:
    """The JSON form of an SDK object: the API's own object when known."""
    raw = getattr(obj, "raw", None)
    if isinstance(raw, dict) and raw:
        return raw
    if attrs.has(type(obj)):
        return attrs.asdict(obj, recurse=True, filter=lambda a, _v: a.name != "raw")
    return obj


def fit_widths(
    columns: Sequence[Column[Any]], cells: list[list[str]], room: int | None
) -> list[int]:
    """Column widths: each column's widest cell (capped at its ``max_width``), then, if the
    table is wider than ``room``, the truncatable columns give way, widest first."""
    widths = [
        max(len(column.header), *(len(line[i]) for line in cells), 1)
        for i, column in enumerate(columns)
    ]
    widths = [
        min(width, column.max_width) if column.max_width else width
        for width, column in zip(widths, columns, strict=True)
    ]
    if room is None:
        return widths
    excess = sum(widths) + 3 * len(widths) + 1 - room
    flexible = [i for i, column in enumerate(columns) if column.max_width]
    while excess > 0 and flexible:
        widest = max(flexible, key=lambda i: widths[i])
        floor = max(4, min(len(columns[widest].header), 12))
        if widths[widest] <= floor:
            flexible.remove(widest)
            continue
        widths[widest] -= 1
        excess -= 1
    return widths


async def _aiter(source: AsyncIterable[T] | Iterable[T]) -> AsyncIterator[T]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


class Output:
    """Where a command prints: ``json`` lines or rich tables; ``limit`` caps lists."""

    def __init__(self, *, json: bool = False, limit: int | None = None) -> None:
        self.json = json
        self.limit = limit
        #: What to print at once on Ctrl-C (while cleanup runs), and when it is done.
        self.canceling = ""
        self.interrupted = "Interrupted."
        self.console = Console(highlight=False)
        if not self.console.is_terminal:  # a pipe or a file: never cut a table short
            self.console.width = 10_000
        self.err = Console(stderr=True, highlight=False)

    def emit_json(self, data: Any) -> None:
        """Print one JSON line and flush it."""
        line = json.dumps(to_json(data), ensure_ascii=False, default=str)
        self.console.file.write(line + "\n")
        self.console.file.flush()

    def note(self, text: str) -> None:
        """A hint for people, on stderr (never mixed into the data on stdout)."""
        self.err.print(f"[dim]{escape(text)}[/dim]")

    async def items(
        self,
        source: AsyncIterable[T] | Iterable[T],
        columns: Sequence[Column[T]],
        *,
        title: str | None = None,
    ) -> int:
        """Print a list (lazily with ``--json``); return how many items were printed."""
        limit = self.limit
        if limit is None and not self.json:
            limit = DEFAULT_TABLE_LIMIT
        if limit == 0:
            limit = None
        rows: list[T] = []
        more = False
        count = 0
        async for item in _aiter(source):
            if limit is not None and count >= limit:
                more = True
                break
            count += 1
            if self.json:
                self.emit_json(item)
            else:
                rows.append(item)
        if not self.json:
            self.table(rows, columns, title=title)
            if more:
                self.note(f"showing the first {count}; use --limit N (0 for all) or --json")
        return count

    def table(self, rows: Sequence[T], columns: Sequence[Column[T]], *, title: str | None) -> None:
        """Print rows as a rich table."""
        if not rows:
            self.note(f"no {title or 'items'}")
            return
        cells = [[cell(column.get(row)) for column in columns] for row in rows]
        room = self.console.width if self.console.is_terminal else None
        widths = fit_widths(columns, cells, room)
        table = Table(title=title, title_justify="left", header_style="bold")
        for column, width in zip(columns, widths, strict=True):
            table.add_column(column.header, width=width, overflow="ellipsis", no_wrap=True)
        for line in cells:
            table.add_row(*map(escape, line))
        self.console.print(table)

    def one(self, obj: T, fields: Sequence[Column[T]]) -> None:
        """Print one object: as JSON, or as ``field  value`` lines (blank fields skipped)."""
        if self.json:
            self.emit_json(obj)
            return
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for field in fields:
            text = cell(field.get(obj))
            if field.max_width is not None and len(text) > field.max_width:
                text = text[: field.max_width - 1] + "…"
            if text:
                table.add_row(field.header, escape(text))
        self.console.print(table)
