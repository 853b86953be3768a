"""Verify and receive Replicate webhook deliveries (the Standard Webhooks / Svix scheme).

Each delivery carries three headers: ``webhook-id``, ``webhook-timestamp`` (unix seconds)
and ``webhook-signature`` (space-separated ``v1,<base64>`` entries). The signature is
``base64(HMAC-SHA256(key, f"{id}.{timestamp}.{raw body}"))`` where ``key`` is the base64
decoding of the secret without its ``whsec_`` prefix. Always verify the *raw* body bytes,
never a re-serialised one.

The secret comes from ``GET /webhooks/default/secret``; fetch it once and cache it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from aiohttp import web

from .exceptions import InvalidArgumentError, WebhookVerificationError

if TYPE_CHECKING:
    from .models import Prediction, Training

__all__ = [
    "DEFAULT_TOLERANCE",
    "parse_prediction",
    "parse_training",
    "sign",
    "unwrap",
    "verify",
    "verify_prediction",
    "verify_request",
    "webhook_handler",
]

#: Default allowed clock skew between the delivery's timestamp and now, in seconds.
DEFAULT_TOLERANCE = 300.0

_SECRET_PREFIX = "whsec_"
_MAX_TIMESTAMP_DIGITS = 20
#: Bigger integer timestamps/tolerances than this are out of range (as many digits as
#: a ``webhook-timestamp`` may have; a float of it cannot overflow).
_MAX_SECONDS = 10**_MAX_TIMESTAMP_DIGITS

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


def _secret_key(secret: Any) -> bytes:
    """The HMAC key of a secret: ``whsec_<base64>``, or the bare base64 (as Svix accepts)."""
    if not isinstance(secret, str):
        raise TypeError(f"secret must be a str ('whsec_<base64>'), got {type(secret).__name__}")
    encoded = secret.strip()
    if encoded.startswith(_SECRET_PREFIX):
        encoded = encoded[len(_SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        # Never echo the secret itself.
        raise WebhookVerificationError(
            "the webhook secret is not valid base64 (expected 'whsec_<base64>')"
        ) from None
    if not key:
        raise WebhookVerificationError("the webhook secret is empty")
    return key


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works with plain dicts and CIMultiDict alike; a value
    that is not text counts as a malformed delivery."""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = candidate
                break
    if value is not None and not isinstance(value, str):
        raise WebhookVerificationError(f"the {name} header is not text")
    return value


def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    try:
        signed = f"{msg_id}.{timestamp}.".encode() + body
    except UnicodeEncodeError:
        raise WebhookVerificationError("the webhook-id header is not valid text") from None
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def _as_bytes(body: Any) -> bytes:
    if isinstance(body, str):
        try:
            return body.encode()
        except UnicodeEncodeError:
            raise WebhookVerificationError("the webhook body is not valid UTF-8 text") from None
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    raise TypeError(f"body must be the raw request body (bytes or str), got {type(body).__name__}")


def _finite(value: Any, what: str, *, optional: bool = True) -> float | None:
    """``None`` (if allowed) or a finite number: a NaN would switch the time check off."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a number of seconds, got {type(value).__name__}")
    if not (isinstance(value, int) or math.isfinite(value)):
        raise InvalidArgumentError(f"{what} must be a finite number, got {value!r}")
    if isinstance(value, int) and abs(value) > _MAX_SECONDS:
        raise InvalidArgumentError(f"{what} is out of range")
    return float(value)


def _check_tolerance(tolerance: Any) -> float | None:
    checked = _finite(tolerance, "tolerance")
    if checked is not None and checked < 0:
        raise InvalidArgumentError(f"tolerance must be >= 0 seconds, got {checked:g}")
    return checked


def sign(body: bytes | str, secret: str, *, msg_id: str, timestamp: int | float) -> str:
    """The ``webhook-signature`` header value (``"v1,<base64>"``) for a delivery.

    Useful to test your own endpoint: send ``webhook-id: msg_id``, ``webhook-timestamp:
    str(int(timestamp))`` and this value with ``body``. A ``str`` body is signed as UTF-8.
    """
    key = _secret_key(secret)
    if not isinstance(msg_id, str):
        raise TypeError(f"msg_id must be a str, got {type(msg_id).__name__}")
    when = _finite(timestamp, "timestamp", optional=False)
    return "v1," + _signature(key, msg_id, str(int(when or 0)), _as_bytes(body))


def verify(
    headers: Mapping[str, str],
    body: bytes | bytearray | memoryview | str,
    secret: str,
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> str:
    """Check a delivery's signature and timestamp; raise :class:`WebhookVerificationError`.
    Return the delivery's ``webhook-id``: the one the signature covers (de-duplicate on it).

    ``headers`` is any mapping (a dict, or aiohttp's ``request.headers``); names are matched
    case-insensitively. ``body`` must be the raw request body (a ``str`` is taken as UTF-8).
    ``secret`` is ``whsec_<base64>``; the bare base64 part is accepted too, like Svix's own
    libraries do. ``tolerance`` is the allowed skew in seconds between the
    ``webhook-timestamp`` and ``now`` (default: the current time) in either direction;
    ``None`` disables the check (for replaying stored deliveries in tests). Arguments of
    the wrong type raise ``TypeError`` naming the argument; a NaN or infinite
    ``tolerance``/``now`` raises :class:`~replicate_async.InvalidArgumentError`.
    """
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers must be a mapping, got {type(headers).__name__}")
    key = _secret_key(secret)
    raw = _as_bytes(body)
    tolerance = _check_tolerance(tolerance)
    current = _finite(now, "now")
    msg_id, timestamp, signatures = _delivery_headers(headers)
    if tolerance is not None:
        _check_timestamp(int(timestamp), time.time() if current is None else current, tolerance)
    _check_signature(key, msg_id, timestamp, signatures, raw)
    return msg_id


def _delivery_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not msg_id or not timestamp or not signatures:
        missing = [
            name
            for name, value in (
                ("webhook-id", msg_id),
                ("webhook-timestamp", timestamp),
                ("webhook-signature", signatures),
            )
            if not value
        ]
        raise WebhookVerificationError(f"missing webhook header(s): {', '.join(missing)}")
    if not (
        timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS
    ):
        raise WebhookVerificationError(
            f"webhook-timestamp is not an integer number of seconds: {timestamp[:32]!r}"
        )
    return msg_id, timestamp, signatures


def _check_timestamp(sent: int, current: float, tolerance: float) -> None:
    if sent < current - tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is too old ({current - sent:.0f}s > {tolerance:g}s tolerance)"
        )
    if sent > current + tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is in the future ({sent - current:.0f}s > {tolerance:g}s tolerance)"
        )


def _check_signature(key: bytes, msg_id: str, timestamp: str, signatures: str, body: bytes) -> None:
    candidates = [
        sig
        for version, _, sig in (entry.partition(",") for entry in signatures.split())
        if version == "v1" and sig and sig.isascii()
    ]
    if not candidates:
        raise WebhookVerificationError("webhook-signature has no 'v1,<base64>' entry")
    expected = _signature(key, msg_id, timestamp, body)
    # Compare against every entry (no early exit), each in constant time.
    matched = False
    for sig in candidates:
        matched |= hmac.compare_digest(expected, sig)
    if not matched:
        raise WebhookVerificationError("no webhook signature matches the body and secret")


async def verify_request(
    request: web.Request, secret: str, *, tolerance: float | None = DEFAULT_TOLERANCE
) -> bytes:
    """Read an aiohttp request's raw body, :func:`verify` it, and return the body."""
    body = await request.read()
    verify(request.headers, body, secret, tolerance=tolerance)
    return body


def _parse(body: Any, cls: type[_T]) -> _T:
    from ._converter import loads, structure

    if not isinstance(body, bytes | bytearray | memoryview | str):
        raise TypeError(f"body must be bytes or str, got {type(body).__name__}")
    try:
        data = loads(bytes(body) if isinstance(body, bytearray | memoryview) else body)
    except (ValueError, RecursionError):  # RecursionError: stdlib json, too deep
        raise WebhookVerificationError("the webhook body is not valid JSON") from None
    try:
        return structure(data, cls)
    except (ValueError, RecursionError) as exc:  # StructureError
        raise WebhookVerificationError(
            f"the webhook body is not a valid {cls.__name__}: {exc}"
        ) from exc


def parse_prediction(body: bytes | str) -> Prediction:
    """Turn a *verified* webhook body into a :class:`~replicate_async.models.Prediction`.

    Raises :class:`WebhookVerificationError` if it is not JSON of the expected shape.
    """
    from .models import Prediction

    return _parse(body, Prediction)


def verify_prediction(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
) -> Prediction:
    """:func:`verify` a delivery, then :func:`parse_prediction` it: for any web framework.

    ``headers`` is any mapping of the request's headers (names matched case-insensitively:
    a dict, Starlette's ``request.headers``, aiohttp's...), ``body`` the raw body. Raises
    :class:`WebhookVerificationError` if the signature, timestamp or shape is wrong.
    """
    verify(headers, body, secret, tolerance=tolerance)
    return parse_prediction(body)


def parse_training(body: bytes | str) -> Training:
    """Turn a *verified* webhook body into a :class:`~replicate_async.models.Training`."""
    from .models import Training

    return _parse(body, Training)


#: Where :func:`unwrap` reads the secret when none is passed.
SECRET_ENV_VAR = "REPLICATE_WEBHOOK_SECRET"


@overload
def unwrap(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str | None = None,
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
) -> Prediction: ...
@overload
def unwrap(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str | None = None,
    *,
    into: type[_T],
    tolerance: float | None = DEFAULT_TOLERANCE,
) -> _T: ...
def unwrap(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str | None = None,
    *,
    into: Any = None,
    tolerance: float | None = DEFAULT_TOLERANCE,
) -> Any:
    """Verify a delivery and parse it, in one call, for any web framework::

        prediction = webhooks.unwrap(request.headers, await request.body())

    ``secret`` defaults to ``REPLICATE_WEBHOOK_SECRET`` (``whsec_...``; none at all is an
    :class:`InvalidArgumentError`, raised before anything is read). ``headers`` is any
    mapping of the request's headers, ``body`` the raw body. ``into=Training`` parses a
    training's delivery. A bad signature, a stale timestamp or a body of the wrong shape
    raises :class:`WebhookVerificationError`.
    """
    if secret is None:
        secret = os.environ.get(SECRET_ENV_VAR) or None
        if secret is None:
            raise InvalidArgumentError(
                f"no webhook secret: pass secret= or set {SECRET_ENV_VAR} "
                "(the key of GET /webhooks/default/secret)"
            )
    verify(headers, body, secret, tolerance=tolerance)
    if into is None:
        return parse_prediction(body)
    return _parse(body, into)


def webhook_handler(
    secret: str | Callable[[], Awaitable[str]],
    on_prediction: Callable[[Prediction], Awaitable[Any]],
    *,
    tolerance: float | None = DEFAULT_TOLERANCE,
    max_remembered: int = 1024,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler for prediction webhooks: ``app.router.add_post(path, handler)``.

    Each delivery is verified (400 with no detail if it fails, or if the body is not a
    prediction: undecodable, nested too deep, or the wrong shape), parsed, and passed to
    ``on_prediction``; 200 once that returns. Replicate retries terminal deliveries with
    the same ``webhook-id``: ids of the last ``max_remembered`` accepted deliveries are
    remembered, and a repeat is answered 200 without calling ``on_prediction`` again. If
    ``on_prediction`` raises, the id is forgotten (so a retry is processed) and aiohttp
    answers 500. ``secret`` may be an async callable, e.g. one that fetches and caches
    ``GET /webhooks/default/secret``.
    """
    if not (isinstance(secret, str) or callable(secret)):
        raise TypeError(f"secret must be a str or an async callable, got {type(secret).__name__}")
    tolerance = _check_tolerance(tolerance)
    if isinstance(max_remembered, bool) or not isinstance(max_remembered, int):
        raise TypeError(f"max_remembered must be an int, got {type(max_remembered).__name__}")
    if max_remembered < 1:
        raise InvalidArgumentError(f"max_remembered must be positive, got {max_remembered}")
    seen: OrderedDict[str, None] = OrderedDict()

    async def handler(request: web.Request) -> web.Response:
        key = secret if isinstance(secret, str) else await secret()
        try:
            body = await verify_request(request, key, tolerance=tolerance)
            prediction = parse_prediction(body)
        except WebhookVerificationError as exc:
            _log.warning("rejected a webhook delivery: %s", exc)
            return web.Response(status=400, text="invalid webhook delivery")
        msg_id = _header(request.headers, "webhook-id") or ""
        if msg_id in seen:
            seen.move_to_end(msg_id)
            return web.Response(status=200, text="duplicate delivery")
        seen[msg_id] = None  # before awaiting, so a concurrent duplicate is not run twice
        if len(seen) > max_remembered:
            seen.popitem(last=False)
        try:
            await on_prediction(prediction)
        except BaseException:
            seen.pop(msg_id, None)
            raise
        return web.Response(status=200, text="ok")

    return handler
