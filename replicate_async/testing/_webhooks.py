"""Webhook signing (Standard Webhooks) and loopback-only delivery with bounded retries."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from ._ids import IdFactory
from ._inprocess import Target, make_target

if TYPE_CHECKING:
    from ._records import FakePrediction

__all__ = [
    "LOOPBACK_HOSTS",
    "WebhookDelivery",
    "WebhookDispatcher",
    "sign_webhook",
    "verify_webhook",
]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
DEFAULT_EVENTS = ("output", "completed")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign_webhook(secret: str, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64 HMAC-SHA256>``) for a delivery.

    The signed content is ``"{msg_id}.{timestamp}.{body}"`` and the key is the base64
    decoding of the secret without its ``whsec_`` prefix (Standard Webhooks / Svix).
    """
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Check a delivery's ``webhook-signature`` header against ``secret`` (no skew check).

    ``False`` on anything malformed (a missing or non-ASCII header, a secret that is not
    base64, values of the wrong type): never an exception."""
    try:
        lowered = {str(k).lower(): v for k, v in headers.items()}
        expected = sign_webhook(secret, lowered["webhook-id"], lowered["webhook-timestamp"], body)
        candidates = str(lowered.get("webhook-signature", "")).split()
        # Compared as bytes: compare_digest refuses non-ASCII str.
        wanted = expected.encode()
        return any(hmac.compare_digest(wanted, c.encode("utf-8", "replace")) for c in candidates)
    except (KeyError, ValueError, TypeError, AttributeError):
        return False


@dataclass(slots=True)
class WebhookDelivery:
    """One delivery attempt the fake made (or refused to make).

    ``status`` is the receiver's HTTP status, ``error`` a connection problem or the reason
    the delivery was skipped (only loopback URLs are ever contacted).
    """

    prediction_id: str
    event: str
    url: str
    webhook_id: str
    timestamp: int
    attempt: int
    body: bytes
    headers: dict[str, str]
    status: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


class WebhookDispatcher:
    """Queues deliveries per prediction (in order) and sends them from one task each."""

    def __init__(
        self,
        secret: str,
        clock: Callable[[], float],
        *,
        max_attempts: int = 3,
        retry_delay: float = 0.05,
        throttle: float = 0.5,
        timeout: float = 5.0,
        ids: IdFactory | None = None,
    ) -> None:
        self.ids = ids if ids is not None else IdFactory()
        self.secret = secret
        self.clock = clock
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.throttle = throttle
        self.timeout = timeout
        self.deliveries: list[WebhookDelivery] = []
        self._queues: dict[str, asyncio.Queue[tuple[str, bytes] | None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_sent: dict[tuple[str, str], float] = {}
        self._session: aiohttp.ClientSession | None = None
        self.targets: dict[str, Target] = {}

    def wanted(self, prediction: FakePrediction, event: str) -> bool:
        """Whether ``event`` should be delivered for ``prediction`` (filter + throttle)."""
        if prediction.webhook is None:
            return False
        allowed = prediction.webhook_events_filter or DEFAULT_EVENTS
        if event not in allowed:
            return False
        if event in ("output", "logs") and self.throttle > 0:
            now = self.clock()
            last = self._last_sent.get((prediction.id, event))
            if last is not None and now - last < self.throttle:
                return False
            self._last_sent[(prediction.id, event)] = now
        return True

    def emit(self, prediction: FakePrediction, event: str, body: bytes | None) -> None:
        """Queue ``body`` as an ``event`` delivery; ``completed`` also ends the queue.

        Call with ``event="completed"`` exactly once per prediction that has a webhook;
        pass ``body=None`` when the event is filtered out.
        """
        if prediction.webhook is None:
            return
        queue = self._queues.get(prediction.id)
        if queue is None:
            queue = asyncio.Queue()
            self._queues[prediction.id] = queue
            task = asyncio.get_running_loop().create_task(self._worker(prediction, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if body is not None:
            queue.put_nowait((event, body))
        if event == "completed":
            queue.put_nowait(None)

    async def _worker(
        self, prediction: FakePrediction, queue: asyncio.Queue[tuple[str, bytes] | None]
    ) -> None:
        url = prediction.webhook or ""
        try:
            while (item := await queue.get()) is not None:
                event, body = item
                attempts = self.max_attempts if event == "completed" else 1
                await self._deliver(prediction.id, url, event, body, attempts)
        finally:
            self._queues.pop(prediction.id, None)
            self._last_sent.pop((prediction.id, "output"), None)
            self._last_sent.pop((prediction.id, "logs"), None)

    async def _deliver(self, pid: str, url: str, event: str, body: bytes, attempts: int) -> None:
        webhook_id = "msg_" + self.ids.new_id(24)
        for attempt in range(1, attempts + 1):
            timestamp = int(self.clock())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Replicate-Webhooks/fake",
                "webhook-id": webhook_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign_webhook(self.secret, webhook_id, timestamp, body),
            }
            record = WebhookDelivery(pid, event, url, webhook_id, timestamp, attempt, body, headers)
            self.deliveries.append(record)
            if not await self._send(record):
                return
            if record.ok:
                return
            if attempt < attempts:
                await asyncio.sleep(self.retry_delay * 2 ** (attempt - 1))

    async def _send(self, record: WebhookDelivery) -> bool:
        """Attempt one delivery; ``False`` when it must not be retried."""
        try:
            url = URL(record.url)
            host = url.host
        except (ValueError, TypeError):
            url, host = URL(), None
        target = self.targets.get((host or "").lower())
        if target is None and host not in LOOPBACK_HOSTS:
            record.error = "not delivered: the fake only sends webhooks to loopback hosts"
            return False
        try:
            if target is not None:
                record.status = await target.post(url, record.headers, record.body)
            else:
                record.status = await self.post(url, record.headers, record.body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            record.error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # the in-process receiver itself failed
            record.error = f"{type(exc).__name__}: {exc}"
        return True

    async def post(self, url: URL, headers: Mapping[str, str], body: bytes) -> int:
        """POST one delivery over loopback HTTP; returns the status."""
        session = self._get_session()
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    def add_target(self, host: str, app: Any) -> None:
        """Deliver webhooks for URLs on ``host`` to ``app`` (ASGI or aiohttp) in-process."""
        self.targets[host.lower()] = make_target(app, self.post)

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    @property
    def pending(self) -> int:
        """How many predictions still have deliveries queued or in flight."""
        return len(self._tasks)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every queued delivery has been attempted (or ``timeout`` passes)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.wait(set(self._tasks))

    async def close(self) -> None:
        """Cancel outstanding deliveries and close the HTTP session."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._queues.clear()
        for target in self.targets.values():
            await target.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None
