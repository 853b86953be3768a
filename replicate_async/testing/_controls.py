"""What a test reaches for besides HTTP: the fake's state, scripted runs, the environment
variables an app reads, and in-process webhook receivers."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Literal

from ._behaviours import ModelBehaviour
from ._context import Context
from ._records import FakePrediction, FileObject
from ._script import Action, ScriptRule, check_output

__all__ = ["Controls"]

_NO_OUTPUT: Any = None


class Controls:
    """Mixed into :class:`FakeReplicate`, which provides ``_ctx``."""

    _ctx: Context

    # ------------------------------------------------------------------- state

    @property
    def predictions(self) -> Mapping[str, FakePrediction]:
        """Every prediction created on this fake (plus the seeded ones), by id: a live,
        read-only view (``.status``, ``.input``, ``.output``, ``.to_json(origin)``...)."""
        return MappingProxyType(self._ctx.store.predictions)

    @property
    def trainings(self) -> Mapping[str, FakePrediction]:
        """Every training, by id (a live, read-only view)."""
        return MappingProxyType(self._ctx.store.trainings)

    @property
    def files(self) -> Mapping[str, FileObject]:
        """Every uploaded file, by id (a live, read-only view; ``.content``, ``.name``...)."""
        return MappingProxyType(self._ctx.store.files)

    # ------------------------------------------------------------ scripted runs

    def _run(self, prediction_id: str) -> FakePrediction:
        store = self._ctx.store
        found = store.predictions.get(prediction_id) or store.trainings.get(prediction_id)
        if found is None:
            raise KeyError(prediction_id)
        return found

    def hold(self, prediction_id: str) -> None:
        """Stop a running prediction (or training) at its next step, keeping its status,
        until :meth:`release` (or :meth:`complete`, :meth:`fail`, :meth:`cancel`)."""
        self._ctx.runner.hold(self._run(prediction_id))

    def release(self, prediction_id: str) -> None:
        """Let a held prediction go on as it would have."""
        self._ctx.runner.release(self._run(prediction_id))

    async def complete(self, prediction_id: str, output: Any = _NO_OUTPUT) -> None:
        """End a prediction ``succeeded`` now (with ``output``, if given: JSON the API
        could send, or a ``ValueError``)."""
        if output is not _NO_OUTPUT:
            check_output(output)
        await self._ctx.runner.settle(self._run(prediction_id), "succeeded", output=output)

    async def fail(self, prediction_id: str, error: str = "Prediction failed") -> None:
        """End a prediction ``failed`` now, with ``error``."""
        await self._ctx.runner.settle(self._run(prediction_id), "failed", error=error)

    async def cancel(self, prediction_id: str) -> None:
        """Cancel a prediction as ``POST .../cancel`` would."""
        await self._ctx.runner.settle(self._run(prediction_id), "canceled")

    def script(
        self,
        action: Action,
        *,
        nth: int = 1,
        model: str | None = None,
        output: Any = None,
        error: str = "Prediction failed for an unknown reason",
    ) -> ScriptRule:
        """``"hold"``, ``"fail"``, ``"cancel"`` or ``"complete"`` the ``nth`` prediction
        created from now on (of ``model``, if given). See :class:`ScriptRule`."""
        rule = ScriptRule(action, nth, model, output, error)
        self._ctx.scripts.append(rule)
        return rule

    # --------------------------------------------------------------- behaviours

    def set_model_behaviour(
        self,
        model: str,
        *,
        duration: float | None = None,
        queue_time: float = 0.0,
        outcome: Literal["succeed", "fail"] = "succeed",
        error: str = "Prediction failed for an unknown reason",
    ) -> None:
        """Configure how runs of ``model`` (``owner/name``) behave from now on.

        ``duration`` is the processing time in seconds (``None``: the server default),
        ``queue_time`` the time spent ``starting``; ``outcome="fail"`` ends runs ``failed``.
        """
        self._ctx.behaviours[model] = ModelBehaviour(duration, queue_time, outcome, error)

    def reset_model_behaviour(self, model: str | None = None) -> None:
        """Forget the behaviour set for ``model`` (or for all models)."""
        if model is None:
            self._ctx.behaviours.clear()
        else:
            self._ctx.behaviours.pop(model, None)

    def set_training_behaviour(
        self,
        *,
        duration: float | None = None,
        queue_time: float = 0.0,
        outcome: Literal["succeed", "fail"] = "succeed",
        error: str = "Training failed",
    ) -> None:
        """Configure how trainings run from now on (like :meth:`set_model_behaviour`)."""
        self._ctx.training_behaviour = ModelBehaviour(duration, queue_time, outcome, error)

    # --------------------------------------------------------------- environment

    @property
    def env_vars(self) -> dict[str, str]:
        """``REPLICATE_BASE_URL`` and ``REPLICATE_API_TOKEN`` pointing at this fake."""
        if not self._ctx.origin:
            raise RuntimeError("the fake server is not started")
        base_url = f"{self._ctx.origin}/v1"
        return {"REPLICATE_BASE_URL": base_url, "REPLICATE_API_TOKEN": self._ctx.options.token}

    @contextlib.contextmanager
    def env(self) -> Iterator[dict[str, str]]:
        """Set :attr:`env_vars` in ``os.environ`` for the block, then restore them, for
        an app that builds its own client from the environment."""
        values = self.env_vars
        saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield values
        finally:
            for name, old in saved.items():
                if old is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = old

    # ------------------------------------------------------------------ webhooks

    def deliver_webhooks_to(self, app: Any, host: str = "app.test") -> None:
        """Deliver webhooks whose URL is on ``host`` to ``app`` inside this process.

        ``app`` is an ASGI application (FastAPI, Starlette...; called directly, no
        socket) or an ``aiohttp.web.Application`` (served on a free loopback port).
        Create predictions with ``webhook="http://app.test/your/path"``.
        """
        self._ctx.webhooks.add_target(host, app)
