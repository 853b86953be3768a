"""Options and the shared context every request handler works with."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from ._behaviours import ModelBehaviour
from ._clock import Clock
from ._faults import Faults
from ._options import DEFAULT_TOKEN, DEFAULT_WEBHOOK_SECRET, FakeOptions
from ._pagination import Cursor, PageSlice, PaginationQuirk, SortedIndex, decode_cursor, page_url
from ._records import Model
from ._runner import Runner
from ._script import ScriptRule
from ._state import Store
from ._util import NS, ApiError, json_response, not_found, problem
from ._webhooks import WebhookDispatcher

__all__ = ["CTX", "DEFAULT_TOKEN", "DEFAULT_WEBHOOK_SECRET", "Context", "FakeOptions"]

T = TypeVar("T")
JSON = dict[str, Any]


@dataclass(eq=False)
class Context:
    """Everything the handlers share: options, store, runner, faults, clock."""

    options: FakeOptions
    clock: Clock
    store: Store
    runner: Runner
    webhooks: WebhookDispatcher
    faults: Faults
    behaviours: dict[str, ModelBehaviour] = field(default_factory=dict)
    training_behaviour: ModelBehaviour | None = None
    origin: str = ""
    pagination_quirk: PaginationQuirk | None = None
    scripts: list[ScriptRule] = field(default_factory=list)

    def now_ns(self) -> int:
        """The injected clock in integer nanoseconds."""
        return int(self.clock() * NS)

    def behaviour_for(self, model: Model) -> ModelBehaviour:
        """The effective behaviour (with a concrete duration) for a run of ``model``."""
        configured = self.behaviours.get(model.full_name)
        if configured is None:
            configured = ModelBehaviour()
        if configured.duration is not None:
            return configured
        default = (
            self.options.slow_duration if model.kind == "slow" else self.options.default_duration
        )
        return ModelBehaviour(default, configured.queue_time, configured.outcome, configured.error)

    def training_behaviour_effective(self) -> ModelBehaviour:
        """The behaviour of trainings (duration defaults to ``training_duration``)."""
        configured = self.training_behaviour or ModelBehaviour()
        if configured.duration is not None:
            return configured
        return ModelBehaviour(
            self.options.training_duration,
            configured.queue_time,
            configured.outcome,
            configured.error,
        )

    # ------------------------------------------------------------------- pagination

    def cursor(self, request: web.Request) -> Cursor | None:
        """The request's ``cursor`` query parameter (raises a 404 problem if malformed)."""
        text = request.query.get("cursor")
        if not text:
            return None
        try:
            return decode_cursor(text)
        except ValueError:
            raise ApiError(problem(404, "Invalid cursor.")) from None

    def page(
        self,
        request: web.Request,
        index: SortedIndex[T],
        render: Callable[[T], Any],
        *,
        descending: bool = True,
        lo: int | None = None,
        hi: int | None = None,
        query: Iterable[tuple[str, str]] | None = None,
    ) -> web.Response:
        """Answer with one page of ``index`` in the API's ``{next, previous, results}`` shape."""
        piece: PageSlice[T] = index.page(
            self.cursor(request), self.options.page_size, descending=descending, lo=lo, hi=hi
        )
        params = list(request.query.items()) if query is None else list(query)
        current = request.query.get("cursor")
        quirk = self.pagination_quirk

        def link(cursor: Cursor | None) -> str | None:
            if cursor is None:
                return "null" if quirk == "null_string" else None
            return page_url(self.origin, request.path, params, cursor, quirk, current)

        body = {
            "next": link(piece.next),
            "previous": link(piece.previous),
            "results": [render(item) for item in piece.items],
        }
        return json_response(body)

    # ---------------------------------------------------------------------- files

    def file_signature(self, owner: str, file_id: str, expiry: int) -> str:
        """The download signature: base64 HMAC-SHA256 of ``"{owner} {id} {expiry}"``."""
        message = f"{owner} {file_id} {expiry}".encode("utf-8", "surrogatepass")
        key = self.options.files_signing_secret.encode("utf-8", "surrogatepass")
        return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()

    # ------------------------------------------------------------------- helpers

    def model_or_404(self, owner: str, name: str) -> Model:
        """Look a model up, or raise the API's 404."""
        model = self.store.get_model(f"{owner}/{name}")
        if model is None or (
            model.visibility == "private" and model.owner != self.store.account["username"]
        ):
            raise ApiError(not_found())
        return model


CTX: web.AppKey[Context] = web.AppKey("replicate_fake_context", Context)
