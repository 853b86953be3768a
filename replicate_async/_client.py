"""The client: configuration, session lifecycle, and the resource namespaces."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

import aiohttp
import attrs

from ._config import DEFAULT_BASE_URL, ClientConfig, RetryPolicy, Timeouts
from ._http import HTTPCore
from .resources import (
    AccountResource,
    Collections,
    DefaultWebhooks,
    Deployments,
    Files,
    HardwareResource,
    Models,
    Predictions,
    Search,
    Trainings,
    Webhooks,
)
from .resources.account import WebhookSecretResource

__all__ = ["AsyncReplicate"]


class AsyncReplicate:
    """An asyncio client for Replicate's HTTP API.

    Use it as an async context manager (one connection pool for its lifetime)::

        async with AsyncReplicate() as client:
            model = await client.models.get("stability-ai/sdxl")

    or keep one per application and ``await client.aclose()`` at shutdown. The token
    comes from ``api_token`` or ``REPLICATE_API_TOKEN``; a missing token is reported at
    the first request that needs one. The base URL comes from ``base_url``,
    ``REPLICATE_BASE_URL``, or the public API.

    ``timeout`` is a :class:`Timeouts` or a number (the read timeout); ``max_retries``
    overrides the retry policy's count (``0`` disables retries); ``max_connections``
    bounds the connection pool (extra requests queue for a free connection). A
    ``session`` you pass is borrowed: the client never closes it.
    """

    def __init__(
        self,
        api_token: str | None = None,
        *,
        base_url: str | None = None,
        timeout: Timeouts | float | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 100,
        session: aiohttp.ClientSession | None = None,
        user_agent: str | None = None,
    ) -> None:
        token = api_token if api_token is not None else os.environ.get("REPLICATE_API_TOKEN")
        if token is not None and not isinstance(token, str):
            raise TypeError("api_token must be a string")
        url = base_url or os.environ.get("REPLICATE_BASE_URL") or DEFAULT_BASE_URL
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"base_url must be an http(s) URL, got {url!r}")
        if timeout is None:
            timeouts = Timeouts()
        elif isinstance(timeout, Timeouts):
            timeouts = timeout
        elif isinstance(timeout, int | float) and not isinstance(timeout, bool):
            timeouts = Timeouts(read=float(timeout))
        else:
            raise TypeError(f"timeout must be a Timeouts or a number of seconds, got {timeout!r}")
        policy = retry or RetryPolicy()
        if max_retries is not None:
            policy = attrs.evolve(policy, max_retries=max_retries)
        self._config = ClientConfig(
            base_url=url.rstrip("/"),
            timeouts=timeouts,
            retry=policy,
            max_connections=max_connections,
            user_agent=user_agent or "",
        )
        self._http = HTTPCore(self._config, token or None, session)
        http = self._http
        self.account = AccountResource(http)
        self.collections = Collections(http)
        self.deployments = Deployments(http)
        self.files = Files(http)
        self.hardware = HardwareResource(http)
        self.models = Models(http)
        self.predictions = Predictions(http)
        self.trainings = Trainings(http)
        self.webhooks = Webhooks(DefaultWebhooks(WebhookSecretResource(http)))
        self.search = Search(http)

    @property
    def config(self) -> ClientConfig:
        """The frozen configuration this client runs with."""
        return self._config

    @property
    def base_url(self) -> str:
        """The API base URL, without a trailing slash."""
        return self._config.base_url

    @property
    def stats(self) -> dict[str, int]:
        """Counters: HTTP requests sent, retries made, waits caused by throttling."""
        return self._http.stats

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._http.closed

    async def __aenter__(self) -> AsyncReplicate:
        await self._http.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless the session was borrowed). Idempotent."""
        await self._http.aclose()

    def __repr__(self) -> str:
        token = "set" if self._http._token else "missing"
        return f"AsyncReplicate(base_url={self.base_url!r}, token={token})"

    def __reduce__(self) -> Any:
        raise TypeError("AsyncReplicate cannot be pickled (it holds a secret and a session)")
