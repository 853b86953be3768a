"""Small read-only endpoints: account, hardware, webhook secret, search."""

from __future__ import annotations

from typing import Unpack

from .._checks import url as check_url
from .._converter import structure_list
from .._core.options import RequestOptionsDict
from .._core.response import decode
from ..exceptions import InvalidArgumentError
from ..models import Account, Hardware, SearchResult, WebhookSecret
from ._base import Resource


class AccountResource(Resource):
    """``GET /account``."""

    __slots__ = ()

    async def get(self, **options: Unpack[RequestOptionsDict]) -> Account:
        """The account (user or organisation) that owns the token."""
        return await self._get("account", Account, options)


class HardwareResource(Resource):
    """``GET /hardware``."""

    __slots__ = ()

    async def list(self, **options: Unpack[RequestOptionsDict]) -> list[Hardware]:
        """Every hardware SKU (the API returns a plain array, not a page)."""
        response = await self._via(options).request("GET", "hardware")
        result: list[Hardware] = decode(response, lambda data: structure_list(data, Hardware))
        return result


class WebhookSecretResource(Resource):
    """``GET /webhooks/default/secret``."""

    __slots__ = ()

    async def get(self, **options: Unpack[RequestOptionsDict]) -> WebhookSecret:
        """The secret that signs webhook deliveries (cache it)."""
        return await self._get("webhooks/default/secret", WebhookSecret, options)


class DefaultWebhooks:
    """``client.webhooks.default``."""

    __slots__ = ("secret",)

    def __init__(self, secret: WebhookSecretResource) -> None:
        self.secret = secret


class Webhooks:
    """``client.webhooks``."""

    __slots__ = ("default",)

    def __init__(self, default: DefaultWebhooks) -> None:
        self.default = default


class Search(Resource):
    """``GET /search`` (beta): models, collections and docs pages. Needs no token."""

    __slots__ = ()

    async def __call__(
        self, query: str, *, limit: int | None = None, **options: Unpack[RequestOptionsDict]
    ) -> SearchResult:
        """Search models, collections and documentation for ``query``."""
        check_url.query_text(query, "query")
        params = {"query": query}
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 50:
                raise InvalidArgumentError(f"limit must be an int from 1 to 50, got {limit!r}")
            params["limit"] = str(limit)
        response = await self._via(options).request("GET", "search", params=params, auth=False)
        from .._converter import structure

        result: SearchResult = decode(response, lambda data: structure(data, SearchResult))
        return result
