"""``/collections``: curated groups of models."""

from __future__ import annotations

from .. import _validate as check
from .._http import path
from ..models import Collection
from ..pagination import AsyncPaginator
from ._base import Resource


class Collections(Resource):
    """Collections of models curated by Replicate."""

    __slots__ = ()

    def list(self, *, cursor: str | None = None) -> AsyncPaginator[Collection]:
        """All collections (without their models)."""
        return AsyncPaginator(self._http, Collection, "collections", cursor=cursor)

    async def get(self, slug: str) -> Collection:
        """One collection with its models."""
        return await self._get(path("collections", check.require_id(slug, "slug")), Collection)
