"""Printing results the way ``gh`` does: for people on a terminal, for programs in a pipe.

- On a terminal: rich tables, numbers with thousands separators, times in the local zone
  (``TZ`` is honoured) labelled with its name.
- In a pipe or a file: one tab-separated line per row, no header, no decoration, no
  padding, nothing cut short; times in ISO 8601 UTC.
- ``--json``: one line of JSON per object, exactly the object the API sent (its ``raw``
  form); lists are streamed as their pages arrive, so ``... --json | head -1`` fetches one
  page. ``--jq EXPR`` prints a part of each object (see :mod:`._jq`).

Hints and progress go to stderr, never into the data on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._jq import JqError, compile_filter, format_result
from ._signals import Interrupts

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "DEFAULT_LIMIT",
    "Column",
    "Output",
    "StdoutFailed",
    "cell",
    "fit_widths",
    "silence_stdout",
    "to_json",
]

T = TypeVar("T")

#: Rows a list shows when ``--limit`` is not given (``--limit 0`` shows everything).
DEFAULT_LIMIT = 50
#: Seconds before a spinner says we are still waiting for the API.
PATIENCE = 1.0


class StdoutFailed(Exception):
    """Writing to stdout failed (a closed pipe, a full disk): the command's output is gone,
    so it stops; the error boundary says why (quietly for a closed pipe)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


def silence_stdout() -> None:
    """Send whatever Python still flushes to stdout to ``/dev/null`` (after it failed)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


@dataclass(frozen=True)
class Column(Generic[T]):
    """One column of a table (or one line of a detail view): a header and a getter.

    A column with a ``max_width`` gives way (truncated with "…") when a terminal table is
    too wide; the others (ids above all) keep their full width. Pipes get every cell whole.
    """

    header: str
    get: Callable[[T], Any]
    max_width: int | None = None


def _local(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone()


def zone_label() -> str:
    """The local time zone's name (from ``TZ`` when set), e.g. ``UTC`` or ``CET``."""
    return datetime.now().astimezone().strftime("%Z") or "local"


def cell(value: Any, *, human: bool = False) -> str:
    """A value as text: ``None`` is blank; for people, grouped numbers and local times;
    for pipes, plain numbers, ISO 8601 UTC times and no tabs or newlines."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return ("yes" if value else "no") if human else ("true" if value else "false")
    if isinstance(value, datetime):
        if human:
            return _local(value).strftime("%Y-%m-%d %H:%M:%S")
        utc = value.astimezone(UTC) if value.tzinfo else value
        return utc.isoformat().replace("+00:00", "Z")
    if isinstance(value, int) and human:
        return f"{value:,}"
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, default=str)
    text = str(value)
    return text if human else " ".join(text.split("\t")).replace("\n", " ")


def to_json(obj: Any) -> Any:
    """The JSON form of an SDK object: the API's own object when known."""
    raw = getattr(obj, "raw", None)
    if isinstance(raw, dict) and raw:
        return raw
    import attrs

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


def _layout(
    columns: Sequence[Column[Any]], cells: list[list[str]], room: int
) -> tuple[list[int], list[int]]:
    """Which columns a terminal table shows, and how wide: truncatable columns give way
    first, and are left out (rightmost first) when even that is not enough."""
    shown = list(range(len(columns)))
    while True:
        widths = fit_widths(
            [columns[i] for i in shown], [[line[i] for i in shown] for line in cells], room
        )
        fits = sum(widths) + 3 * len(widths) + 1 <= room
        flexible = [i for i in shown if columns[i].max_width]
        if fits or not flexible:
            return shown, widths
        shown.remove(flexible[-1])


async def _aiter(source: AsyncIterable[T] | Iterable[T]) -> AsyncIterator[T]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


class Output:
    """Where a command prints: JSON lines, terminal tables or plain lines."""

    def __init__(
        self, *, json: bool = False, jq: str | None = None, limit: int | None = None
    ) -> None:
        self.json = json or jq is not None
        self._filter = compile_filter(jq) if jq is not None else None
        self.limit = limit
        self.tty = sys.stdout.isatty()
        self.err_tty = sys.stderr.isatty()
        #: The global ``--timeout`` (commands that own their deadline read it).
        self.timeout: float | None = None
        self.interrupts = Interrupts()
        #: What to print when Ctrl-C ends the command without saying more itself.
        self.interrupted = "Interrupted."
        self._console: Console | None = None
        self._err: Console | None = None
        self._spinner: Any = None
        self._label = ""
        #: Whether the last text written to stdout did not end its line.
        self.mid_line = False

    # -- consoles (rich is imported only for a terminal) -----------------------------

    @property
    def console(self) -> Console:
        """A rich console on stdout."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False)
        return self._console

    @property
    def err(self) -> Console:
        """A rich console on stderr."""
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False)
        return self._err

    # -- writing ---------------------------------------------------------------------

    def write(self, text: str) -> None:
        """Write to stdout and flush; :class:`StdoutFailed` if stdout cannot take it."""
        self.stop_spinner()
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except OSError as exc:
            raise StdoutFailed(exc) from None
        if text:
            self.mid_line = not text.endswith("\n")

    def write_bytes(self, data: bytes) -> None:
        """Write bytes to stdout as they are (a downloaded file)."""
        self.stop_spinner()
        try:
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        except OSError as exc:
            raise StdoutFailed(exc) from None

    def emit_json(self, data: Any) -> None:
        """Print one JSON line (or the ``--jq`` results of it) and flush.

        When ``--jq`` does not fit the value (``.foo`` of a string), the whole value is
        printed instead, so nothing the command got is lost, then :class:`JqError` is
        raised (the boundary makes it exit status 2).
        """
        value = to_json(data)

        def dumps(item: Any) -> str:
            return json.dumps(item, ensure_ascii=False, default=str)

        if self._filter is None:
            self.write(dumps(value) + "\n")
            return
        try:
            lines = [format_result(item, dumps) for item in self._filter(value)]
        except JqError as exc:
            self.write(dumps(value) + "\n")
            raise JqError(f"{exc}; the whole value is printed instead") from None
        self.write("".join(line + "\n" for line in lines))

    def say(self, text: str) -> None:
        """A line for people on stderr (what is happening, what was done); on a terminal
        it starts on a line of its own, even after a partial line of output."""
        self.stop_spinner()
        self._end_line()
        print(text, file=sys.stderr, flush=True)

    def _end_line(self) -> None:
        """End a partial line of output on a terminal (before a message on stderr)."""
        if self.mid_line and self.tty:
            self.write("\n")

    def note(self, text: str) -> None:
        """A hint on stderr, dimmed on a terminal."""
        if self.err_tty:
            from rich.markup import escape

            self.stop_spinner()
            self._end_line()
            self.err.print(f"[dim]{escape(text)}[/dim]")
        else:
            self.say(text)

    # -- waiting ---------------------------------------------------------------------

    @contextlib.contextmanager
    def status(
        self, text: str, *, delay: float = 0.0, since: float | None = None
    ) -> Iterator[None]:
        """A spinner with the elapsed time on a terminal's stderr (after ``delay``),
        counted from ``since`` (a loop time; default now) so that one wait shown in
        steps keeps one clock."""
        if not self.err_tty:
            yield
            return
        from rich.markup import escape

        loop = asyncio.get_running_loop()
        start = loop.time() if since is None else since
        self._label = text

        async def spin() -> None:
            await asyncio.sleep(delay)
            self._spinner = self.err.status(escape(self._label))
            self._spinner.start()
            while True:
                await asyncio.sleep(0.1)
                if self._spinner is not None:
                    elapsed = loop.time() - start
                    self._spinner.update(f"{escape(self._label)} [dim]{elapsed:.1f}s[/dim]")

        ticker = asyncio.ensure_future(spin())
        try:
            yield
        finally:
            ticker.cancel()
            self.stop_spinner()

    def relabel(self, text: str) -> None:
        """Change what the current spinner says (it keeps its clock)."""
        self._label = text

    def patience(self, text: str) -> contextlib.AbstractContextManager[None]:
        """A spinner that only appears when an answer takes more than a second."""
        return self.status(text, delay=PATIENCE)

    def stop_spinner(self) -> None:
        """Remove the spinner (before anything else is printed)."""
        spinner, self._spinner = self._spinner, None
        if spinner is not None:
            spinner.stop()

    # -- lists and objects -----------------------------------------------------------

    async def items(
        self,
        source: AsyncIterable[T] | Iterable[T],
        columns: Sequence[Column[T]],
        *,
        title: str | None = None,
    ) -> int:
        """Print a list (streamed unless it is a terminal table); return the count."""
        limit = self.limit
        if limit is None and not self.json:
            limit = DEFAULT_LIMIT
        rows: list[T] = []
        more = False
        count = 0
        async for item in _aiter(source):
            if limit and count >= limit:
                more = True
                break
            count += 1
            if self.json:
                self.emit_json(item)
            elif not self.tty:
                self.write("\t".join(cell(c.get(item)) for c in columns) + "\n")
            else:
                rows.append(item)
        if self.tty and not self.json:
            self.table(rows, columns, title=title)
        elif count == 0 and not self.json:
            self.note(f"no {title or 'items'}")
        if more:
            self.note(f"showing the first {count}; use --limit N (0 for all)")
        return count

    def table(self, rows: Sequence[T], columns: Sequence[Column[T]], *, title: str | None) -> None:
        """Print rows: a rich table on a terminal, tab-separated lines elsewhere."""
        if not rows:
            self.note(f"no {title or 'items'}")
            return
        if not self.tty:
            for row in rows:
                self.write("\t".join(cell(c.get(row)) for c in columns) + "\n")
            return
        from rich.markup import escape
        from rich.table import Table

        values = [[column.get(row) for column in columns] for row in rows]
        labelled = [
            Column(f"{c.header} ({zone_label()})", c.get, c.max_width)
            if any(isinstance(line[i], datetime) for line in values)
            else c
            for i, c in enumerate(columns)
        ]
        cells = [[cell(value, human=True) for value in line] for line in values]
        shown, widths = _layout(labelled, cells, self.console.width)
        table = Table(title=title, title_justify="left", header_style="bold")
        for i, width in zip(shown, widths, strict=True):
            table.add_column(labelled[i].header, width=width, overflow="ellipsis", no_wrap=True)
        for line in cells:
            table.add_row(*(escape(line[i]) for i in shown))
        self.stop_spinner()
        # Never cut a column without a max_width (ids): a table still too wide for the
        # terminal is drawn at its own width, and the terminal wraps it.
        self.console.print(table, width=max(self.console.width, sum(widths) + 3 * len(widths) + 1))

    def one(self, obj: T, fields: Sequence[Column[T]]) -> None:
        """Print one object: JSON, ``field  value`` lines on a terminal (blank fields
        skipped), or ``field<TAB>value`` lines in a pipe."""
        if self.json:
            self.emit_json(obj)
            return
        pairs = [(field.header, field.get(obj)) for field in fields]
        if not self.tty:
            self.write(
                "".join(f"{name}\t{cell(value)}\n" for name, value in pairs if value is not None)
            )
            return
        from rich.table import Table
        from rich.text import Text

        # Names in one column, values wrapped at word boundaries in the other (by the
        # terminal's width), so a long description never breaks mid-word.
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="bold")
        grid.add_column(overflow="fold")
        for (name, value), field in zip(pairs, fields, strict=True):
            text = cell(value, human=True)
            if isinstance(value, datetime):
                text = f"{text} {zone_label()}"
            if field.max_width is not None and len(text) > field.max_width:
                text = text[: field.max_width - 1] + "…"
            if text:
                grid.add_row(Text(name), Text(text))
        self.stop_spinner()
        self.console.print(grid)
