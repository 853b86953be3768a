"""Per-request options: one frozen value, merged once in the request path."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final, TypedDict

import aiohttp
import attrs

from .._config import RetryPolicy, positive_seconds
from .._converter import dumps, loads
from ..exceptions import InvalidArgumentError

__all__ = [
    "FORBIDDEN_HEADERS",
    "NO_OPTIONS",
    "OPTION_NAMES",
    "RequestOptions",
    "RequestOptionsDict",
    "call_options",
]


#: RFC 9110 ``token``: what a header field name may consist of.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+").fullmatch
#: Headers no option may set: the token (only ever the client's own), the host it goes to,
#: and the message framing and hop-by-hop fields that aiohttp computes itself.
FORBIDDEN_HEADERS: Final = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
#: Control characters a header value may not hold (HTAB is allowed, RFC 9110 5.5).
_BAD_VALUE_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]").search
#: The most retries an option may ask for (as ``AsyncReplicate(max_retries=...)``).
MAX_RETRIES: Final = 100


def _retries(_instance: object, _attribute: object, value: int | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_retries must be an int, got {type(value).__name__}")
    if not 0 <= value <= MAX_RETRIES:
        shown = value if abs(value) < 10**12 else "a huge number"
        raise InvalidArgumentError(f"max_retries must be from 0 to {MAX_RETRIES}, got {shown}")


def _string_map(value: Any, what: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a mapping of strings, got {type(value).__name__}")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise TypeError(f"{what} names and values must be strings: {key!r:.80}")
    return dict(value)


def _headers(value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    headers = _string_map(value, "extra_headers")
    for name, item in (headers or {}).items():
        if not _TOKEN(name):
            raise InvalidArgumentError(
                f"extra_headers: {name!r:.80} is not a header name (RFC 9110 token: letters, "
                "digits and !#$%&'*+-.^_`|~; no spaces, colons or line breaks)"
            )
        if name.lower() in FORBIDDEN_HEADERS:
            raise InvalidArgumentError(
                f"extra_headers may not set {name!r}: Authorization is only ever the client's "
                "token, and Host and the framing headers are the HTTP layer's"
            )
        if _BAD_VALUE_CHARS(item):
            raise InvalidArgumentError(
                f"extra_headers: the value of {name!r} holds a control character (CR, LF, NUL...)"
            )
    return headers


def _query(value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    query = _string_map(value, "extra_query")
    for key, item in (query or {}).items():
        if any(ch in key + item for ch in "\r\n\0"):
            raise InvalidArgumentError(f"extra_query: no CR, LF or NUL allowed in {key!r:.80}")
    return query


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

    - ``timeout``: seconds for each HTTP attempt, every phase (connect, read, total); more
      than 0 and at most 24 hours.
    - ``extra_headers`` / ``extra_query``: added to the request (they win over the SDK's own).
      Header names must be RFC 9110 tokens; ``Authorization`` (only ever the client's
      token), ``Host`` and the framing and hop-by-hop headers (``Content-Length``,
      ``Transfer-Encoding``, ``Connection``...; :data:`FORBIDDEN_HEADERS`) cannot be set.
    - ``extra_body``: keys merged into the JSON body of the operations that send one
      (creates, updates; they win); operations without a JSON body ignore it.
    - ``max_retries``: this call's retry count, 0 to 100 (see :class:`RetryPolicy`).

    A bad value raises :class:`~replicate_async.InvalidArgumentError` (a wrong type,
    ``TypeError``) when the options are made, before any request.
    """

    timeout: float | None = attrs.field(default=None, validator=positive_seconds)
    extra_headers: Mapping[str, str] | None = attrs.field(default=None, converter=_headers)
    extra_query: Mapping[str, str] | None = attrs.field(default=None, converter=_query)
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
        """The query, body and headers of a request with these options merged in.

        ``extra_body`` goes only into a JSON object body (the request's own headers say
        ``Content-Type: application/json``): never onto a GET, a page, a cancel or an upload.
        """
        if self.extra_query:
            params = {**(params or {}), **self.extra_query}
        if self.extra_body and content and isinstance(content, bytes) and _sends_json(headers):
            data = loads(content)
            if isinstance(data, dict):
                content = dumps({**data, **self.extra_body})
        if self.extra_headers:
            headers = {**(headers or {}), **self.extra_headers}
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


def _sends_json(headers: Mapping[str, str] | None) -> bool:
    if not headers:
        return False
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value.split(";", 1)[0].strip().lower() == "application/json"
    return False


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
