"""Walking a model's OpenAPI schema on a budget: ``$ref``s followed and ``allOf``s merged,
memoised and cycle-safe, never past ``MAX_NODES`` nodes or ``MAX_DEPTH`` levels.

A schema is written by whoever pushed the model; this walk is what lets the checker
(:mod:`replicate_async._checks.schema`), output shaping and ``codegen`` read any of them without
a hang or a ``RecursionError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from ..exceptions import SchemaError

__all__ = ["MAX_DEPTH", "MAX_NODES", "Walker", "is_mapping"]

JSON = Mapping[str, Any]

#: Schema nodes one walk may visit ($ref hops and allOf parts included), and how deep
#: $ref/allOf/items/properties may nest. The largest recorded schema visits about 60.
MAX_NODES = 20_000
MAX_DEPTH = 48


def is_mapping(value: Any) -> TypeGuard[JSON]:
    """``isinstance(value, Mapping)``, with a plain dict (nearly every node) decided
    without the ABC machinery: this runs for every node of every check."""
    return type(value) is dict or isinstance(value, Mapping)


class Walker:
    """Follows ``$ref``s and merges ``allOf``s within a schema document, on a budget.

    Every node is flattened once (memoised by identity, so a doubling ``allOf`` chain
    costs its length, not 2ⁿ); a ``$ref`` or ``allOf`` cycle ends where it started (the
    cycle adds nothing); and past ``MAX_NODES`` nodes or ``MAX_DEPTH`` levels the walk
    stops with :class:`SchemaError`. Recursion is bounded by ``MAX_DEPTH``, far below
    Python's own limit, so no schema can raise ``RecursionError``.
    """

    __slots__ = ("_flat", "_open", "_resolved", "document", "visited")

    def __init__(self, document: Any) -> None:
        self.document = document if isinstance(document, Mapping) else {}
        self.visited = 0
        self._flat: dict[int, JSON] = {}
        self._open: set[int] = set()
        self._resolved: dict[int, JSON] = {}

    def tick(self, count: int = 1) -> None:
        self.visited += count
        if self.visited > MAX_NODES:
            raise SchemaError(f"too complex (more than {MAX_NODES} schema nodes to visit)")

    def resolve(self, schema: Any) -> JSON:
        """Follow local ``$ref``s (``#/components/schemas/x``); a missing, foreign or
        cyclic reference resolves to ``{}`` (no constraint)."""
        if not is_mapping(schema):
            return {}
        ref = schema.get("$ref")
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return schema
        start = id(schema)
        if start in self._resolved:
            return self._resolved[start]
        found = self._follow(schema)
        self._resolved[start] = found
        return found

    def _follow(self, schema: Any) -> JSON:
        seen: set[int] = set()
        while is_mapping(schema):
            ref = schema.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#/"):
                return schema
            if id(schema) in seen:  # a $ref cycle adds nothing
                return {}
            seen.add(id(schema))
            self.tick()
            node: Any = self.document
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                node = node.get(part) if is_mapping(node) else None
            schema = node
        return {}

    def flatten(self, schema: Any, depth: int = 0) -> JSON:
        """``schema`` with its ``$ref`` and ``allOf`` parts merged in (its own keys win).

        Read-only: a node without ``allOf`` is returned as it is, not copied."""
        resolved = self.resolve(schema)
        key = id(resolved)
        if key in self._flat:  # each node counts once, however often a check meets it
            return self._flat[key]
        if "allOf" not in resolved:
            self.tick()
            self._flat[key] = resolved
            return resolved
        if key in self._open:  # an allOf cycle: what is already merged stands
            return {}
        if depth > MAX_DEPTH:
            raise SchemaError(f"too complex (nested more than {MAX_DEPTH} levels)")
        self.tick()
        self._open.add(key)
        merged: dict[str, Any] = {}
        parts = resolved.get("allOf")
        if isinstance(parts, list | tuple):
            for sub in parts:
                merged.update(self.flatten(sub, depth + 1))
        merged.update((k, v) for k, v in resolved.items() if k not in ("allOf", "$ref"))
        self._open.discard(key)
        self._flat[key] = merged
        return merged
