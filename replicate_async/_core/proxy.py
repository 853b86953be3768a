"""Proxies from the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``), the way
httpx and the official SDKs honour them.

Read once, when the client is created, through the standard library (the same
``getproxies``/``proxy_bypass`` that aiohttp's ``trust_env`` uses), and decided once per
host; the request path then passes ``proxy=`` itself. (aiohttp's own ``trust_env`` would
look the environment and ``~/.netrc`` up again in a worker thread on every request: two
thread hops per call.) Credentials in a proxy URL (``http://user:pass@proxy:3128``) are
sent to the proxy as ``Proxy-Authorization``.
"""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Mapping
from typing import Final

from yarl import URL

__all__ = ["NO_PROXY", "EnvProxies", "Route"]

#: A proxy URL and the headers for it (its credentials), or ``(None, None)``: go direct.
Route = tuple[URL | None, Mapping[str, str] | None]
NO_PROXY: Final[Route] = (None, None)
#: Hosts whose decision is remembered (the API's, a few file hosts).
_MAX_HOSTS: Final = 256


class EnvProxies:
    """The environment's proxies, by URL scheme, and a per-host decision."""

    def __init__(self) -> None:
        self._by_scheme: dict[str, Route] = {}
        for scheme, value in urllib.request.getproxies().items():
            if scheme in ("http", "https") and value:
                self._by_scheme[scheme] = _route(value)
        self._hosts: dict[tuple[str, str, int | None], Route] = {}

    def __bool__(self) -> bool:
        return bool(self._by_scheme)

    def route(self, url: str) -> Route:
        """Where a request to ``url`` goes: its scheme's proxy, unless ``NO_PROXY`` (or the
        system's bypass list) names its host."""
        if not self._by_scheme:
            return NO_PROXY
        parsed = URL(url)
        key = (parsed.scheme, parsed.host or "", parsed.port)
        found = self._hosts.get(key)
        if found is None:
            found = self._by_scheme.get(parsed.scheme, NO_PROXY)
            if found is not NO_PROXY and parsed.host and urllib.request.proxy_bypass(parsed.host):
                found = NO_PROXY
            if len(self._hosts) < _MAX_HOSTS:
                self._hosts[key] = found
        return found


def _route(value: str) -> Route:
    """A proxy setting (``http://user:pass@host:port``, or ``host:port``) as a route."""
    proxy = URL(value if "://" in value else f"http://{value}")
    if proxy.user is None:
        return proxy, None
    pair = f"{proxy.user}:{proxy.password or ''}".encode()
    headers = {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return proxy.with_user(None), headers
