"""Cursor pagination over sorted in-memory indexes (O(log n) per page, no scans)."""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar
from urllib.parse import urlencode

__all__ = [
    "SEQ_BITS",
    "Cursor",
    "PageSlice",
    "PaginationQuirk",
    "SortedIndex",
    "decode_cursor",
    "encode_cursor",
    "make_key",
    "page_url",
]

V = TypeVar("V")

SEQ_BITS = 24
SEQ_MASK = (1 << SEQ_BITS) - 1

PaginationQuirk = Literal["loop", "foreign_host", "relative", "http", "null_string"]


def make_key(ns: int, seq: int) -> int:
    """A unique, time-ordered index key from a timestamp (ns) and a sequence number."""
    return (ns << SEQ_BITS) | (seq & SEQ_MASK)


def key_bound(ns: int, *, after: bool) -> int:
    """The smallest key strictly after (``after=True``) or at/after ``ns``."""
    return ((ns + 1) << SEQ_BITS) if after else (ns << SEQ_BITS)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in an index: ``reverse`` cursors walk back toward the previous page."""

    position: int
    reverse: bool = False


def encode_cursor(cursor: Cursor) -> str:
    """Opaque, URL-safe text for a cursor (base64 of ``p=<pos>`` like DRF's cursors)."""
    raw = f"r=1&p={cursor.position}" if cursor.reverse else f"p={cursor.position}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """Parse :func:`encode_cursor` output; raises :class:`ValueError` when malformed."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc
    fields = dict(part.partition("=")[::2] for part in raw.split("&"))
    try:
        position = int(fields["p"])
    except (KeyError, ValueError) as exc:
        raise ValueError("invalid cursor") from exc
    return Cursor(position, reverse=fields.get("r") == "1")


@dataclass(slots=True)
class PageSlice(Generic[V]):
    """One page of values plus the cursors for the neighbouring pages."""

    items: list[V]
    next: Cursor | None
    previous: Cursor | None


class SortedIndex(Generic[V]):
    """Values kept in ascending key order, in two parallel lists.

    Appends (the common case: new objects are the newest) are O(1); pages are two
    bisections and a slice.
    """

    __slots__ = ("keys", "values")

    def __init__(self) -> None:
        self.keys: list[int] = []
        self.values: list[V] = []

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: int, value: V) -> None:
        """Insert ``value`` under a unique ``key``."""
        if not self.keys or key > self.keys[-1]:
            self.keys.append(key)
            self.values.append(value)
            return
        pos = bisect_left(self.keys, key)
        self.keys.insert(pos, key)
        self.values.insert(pos, value)

    def remove(self, key: int) -> None:
        """Remove the value stored under ``key`` (no error if absent)."""
        pos = bisect_left(self.keys, key)
        if pos < len(self.keys) and self.keys[pos] == key:
            del self.keys[pos]
            del self.values[pos]

    def extend_sorted(self, pairs: Iterable[tuple[int, V]]) -> None:
        """Bulk-insert many items at once (one sort instead of many insertions)."""
        new = list(pairs)
        if not new:
            return
        new.sort(key=lambda pair: pair[0])
        if not self.keys or new[0][0] > self.keys[-1]:
            self.keys.extend(k for k, _ in new)
            self.values.extend(v for _, v in new)
        elif new[-1][0] < self.keys[0]:
            self.keys[:0] = [k for k, _ in new]
            self.values[:0] = [v for _, v in new]
        else:
            merged = sorted([*zip(self.keys, self.values, strict=True), *new], key=lambda p: p[0])
            self.keys = [k for k, _ in merged]
            self.values = [v for _, v in merged]

    def page(
        self,
        cursor: Cursor | None,
        limit: int,
        *,
        descending: bool = True,
        lo: int | None = None,
        hi: int | None = None,
    ) -> PageSlice[V]:
        """Return up to ``limit`` values after ``cursor``, restricted to ``lo <= key < hi``."""
        keys = self.keys
        a = 0 if lo is None else bisect_left(keys, lo)
        b = len(keys) if hi is None else bisect_left(keys, hi)
        b = max(a, b)
        if descending:
            if cursor is None or not cursor.reverse:
                end = b if cursor is None else bisect_left(keys, cursor.position, a, b)
                start = max(a, end - limit)
            else:
                start = bisect_right(keys, cursor.position, a, b)
                end = min(b, start + limit)
            values = self.values[start:end]
            values.reverse()
            nxt = Cursor(_key_at(keys, start)) if start > a else None
            prev = Cursor(keys[end - 1], True) if end < b and end > start else None
            if end < b and end == start:
                prev = Cursor(keys[end] - 1, True)
            return PageSlice(values, nxt, prev)
        if cursor is None or not cursor.reverse:
            start = a if cursor is None else bisect_right(keys, cursor.position, a, b)
            end = min(b, start + limit)
        else:
            end = bisect_left(keys, cursor.position, a, b)
            start = max(a, end - limit)
        nxt = Cursor(keys[end - 1]) if end < b and end > start else None
        if end < b and end == start:
            nxt = Cursor(keys[end] - 1)
        prev = Cursor(_key_at(keys, start), True) if start > a else None
        return PageSlice(self.values[start:end], nxt, prev)


def _key_at(keys: list[int], position: int) -> int:
    """The key at ``position``, or just past the last key for a cursor past the end."""
    return keys[position] if position < len(keys) else keys[-1] + 1


def page_url(
    origin: str,
    path: str,
    query: Iterable[tuple[str, str]],
    cursor: Cursor,
    quirk: PaginationQuirk | None = None,
    current_cursor: str | None = None,
) -> str:
    """Build an absolute ``next``/``previous`` URL keeping the request's other query params.

    ``quirk`` deliberately produces the broken links some servers/specs emit, so clients
    can be tested against them.
    """
    params = [(k, v) for k, v in query if k != "cursor"]
    token = current_cursor if quirk == "loop" else encode_cursor(cursor)
    if token is not None:
        params.append(("cursor", token))
    qs = f"?{urlencode(params)}" if params else ""
    if quirk == "foreign_host":
        return f"http://evil.example{path}{qs}"
    if quirk == "relative":
        return f"{path}{qs}"
    if quirk == "http":
        return f"http://api.replicate.com{path}{qs}"
    return f"{origin}{path}{qs}"
