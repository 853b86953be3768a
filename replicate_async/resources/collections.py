"""``/collections``: curated groups of models."""

from __future__ import annotations

from typing import Unpack

from .._checks import url as check_url
from .._core.http import path
from .._core.options import RequestOptionsDict
from ..models import Collection
from ..pagination import AsyncPaginator
from ._base import Resource


class Collections(Resource):
    """Collections of models curated by Replicate."""

    __slots__ = ()

    def list(
        self, *, cursor: str | None = None, **options: Unpack[RequestOptionsDict]
    ) -> AsyncPaginator[Collection]:
        """All collections (without their models)."""
        return AsyncPaginator(self._via(options), Collection, "collections", cursor=cursor)

    async def get(self, slug: str, **options: Unpack[RequestOptionsDict]) -> Collection:
        """One collection with its models."""
        return await self._get(
            path("collections", check_url.require_id(slug, "slug")), Collection, options
        )
