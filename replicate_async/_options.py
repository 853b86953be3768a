"""Per-request options: one frozen value, merged once in the request path."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, TypedDict

import aiohttp
import attrs

from ._config import RetryPolicy
from ._converter import dumps, loads

__all__ = ["NO_OPTIONS", "OPTION_NAMES", "RequestOptions", "RequestOptionsDict", "call_options"]


def _timeout(_instance: object, _attribute: object, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"timeout must be a number of seconds, got {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"timeout must be a positive, finite number of seconds, got {value!r}")


def _retries(_instance: object, _attribute: object, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_retries must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"max_retries must be >= 0, got {value}")


def _strings(value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping of strings, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"header and query names and values must be strings: {key!r}")
        if any(ch in key + item for ch in "\r\n\0"):
            raise ValueError(f"no CR, LF or NUL allowed in {key!r}")
    return dict(value)


def _body(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"extra_body must be a mapping, got {type(value).__name__}")
    return dict(value)


@attrs.frozen
class RequestOptions:
    """Options for one call (keyword arguments of an operation) or for a client copy
    (:meth:`AsyncReplicate.with_options`). Unset fields (``None``) inherit.

    - ``timeout``: seconds for each HTTP attempt, every phase (connect, read, total).
    - ``extra_headers`` / ``extra_query``: added to the request (they win over the SDK's own,
      except ``Authorization``, which is only ever the client's token).
    - ``extra_body``: keys merged into a JSON request body (they win).
    - ``max_retries``: this call's retry count (see :class:`RetryPolicy`).
    """

    timeout: float | None = attrs.field(default=None, validator=_timeout)
    extra_headers: Mapping[str, str] | None = attrs.field(default=None, converter=_strings)
    extra_query: Mapping[str, str] | None = attrs.field(default=None, converter=_strings)
    extra_body: Mapping[str, Any] | None = attrs.field(default=None, converter=_body)
    max_retries: int | None = attrs.field(default=None, validator=_retries)

    def merged(self, override: RequestOptions) -> RequestOptions:
        """These options with ``override``'s set fields on top (mappings merged by key)."""
        if override is NO_OPTIONS:
            return self
        if self is NO_OPTIONS:
            return override

        def both(mine: Mapping[str, Any] | None, theirs: Mapping[str, Any] | None) -> Any:
            if mine is None or theirs is None:
                return theirs if mine is None else mine
            return {**mine, **theirs}

        return RequestOptions(
            timeout=override.timeout if override.timeout is not None else self.timeout,
            extra_headers=both(self.extra_headers, override.extra_headers),
            extra_query=both(self.extra_query, override.extra_query),
            extra_body=both(self.extra_body, override.extra_body),
            max_retries=(
                override.max_retries if override.max_retries is not None else self.max_retries
            ),
        )

    def apply(
        self,
        params: Mapping[str, str] | None,
        content: Any,
        headers: Mapping[str, str] | None,
    ) -> tuple[Mapping[str, str] | None, Any, Mapping[str, str] | None]:
        """The query, body and headers of a request with these options merged in."""
        if self.extra_query:
            params = {**(params or {}), **self.extra_query}
        if self.extra_headers:
            headers = {**(headers or {}), **self.extra_headers}
        if self.extra_body and isinstance(content, bytes | bytearray | type(None)):
            data = loads(bytes(content)) if content else {}
            if not isinstance(data, dict):
                raise TypeError("extra_body needs a JSON object body to merge into")
            content = dumps({**data, **self.extra_body})
        return params, content, headers

    def policy(self, policy: RetryPolicy) -> RetryPolicy:
        """``policy`` with this call's ``max_retries``, if set."""
        if self.max_retries is None:
            return policy
        return _with_retries(policy, self.max_retries)

    def attempt_timeout(self, hold_read: float | None) -> aiohttp.ClientTimeout | None:
        """Every phase of an attempt set to ``self.timeout`` (``None`` when unset); a longer
        read that a ``Prefer: wait`` hold needs (``hold_read``) is kept."""
        if self.timeout is None:
            return None
        return _attempt_timeout(self.timeout, max(self.timeout, hold_read or 0.0))


# Per-call options repeat (``timeout=30`` on every call of a loop): their derived values are
# made once. The keys are frozen values; the caches are bounded.


@functools.lru_cache(maxsize=64)
def _with_retries(policy: RetryPolicy, max_retries: int) -> RetryPolicy:
    return attrs.evolve(policy, max_retries=max_retries)


@functools.lru_cache(maxsize=64)
def _attempt_timeout(timeout: float, read: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=read, sock_connect=timeout, sock_read=read)


@functools.lru_cache(maxsize=64)
def _scalar_options(
    timeout: tuple[type, float | None], max_retries: tuple[type, int | None]
) -> RequestOptions:
    # Keyed with each value's type: ``True == 1`` must not find the options of ``1``.
    return RequestOptions(timeout=timeout[1], max_retries=max_retries[1])


#: No options: every request goes exactly as the SDK builds it.
NO_OPTIONS = RequestOptions()


class RequestOptionsDict(TypedDict, total=False):
    """The per-call option keywords every operation accepts (``**options``), typed for
    checkers through ``Unpack``; the same fields as :class:`RequestOptions`."""

    timeout: float | None
    extra_headers: Mapping[str, str] | None
    extra_query: Mapping[str, str] | None
    extra_body: Mapping[str, Any] | None
    max_retries: int | None


#: The option keyword names.
OPTION_NAMES = frozenset(RequestOptionsDict.__optional_keys__)


def call_options(options: RequestOptionsDict) -> RequestOptions:
    """The one conversion of an operation's option keywords (checked before any request)."""
    if not options:
        return NO_OPTIONS
    if options.keys() <= _SCALAR_NAMES:  # only numbers: the same call's options are reused
        timeout, retries = options.get("timeout"), options.get("max_retries")
        try:
            return _scalar_options((type(timeout), timeout), (type(retries), retries))
        except TypeError as exc:
            if "unhashable" not in str(exc):
                raise
    return RequestOptions(**options)


_SCALAR_NAMES = frozenset({"timeout", "max_retries"})
