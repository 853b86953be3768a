"""The Celery recipe: each task runs one input through a shared batch ledger, keyed by the
task's id, so a task redelivered after its worker died re-attaches to the prediction it
already paid for instead of creating another.

The two settings that make Celery redeliver a task whose worker died mid-task:
``task_acks_late`` (acknowledge after the task, not before) and
``task_reject_on_worker_lost``. With a Redis broker, an unacknowledged task comes back
after ``visibility_timeout`` seconds. Configuration comes from the environment here
(``CELERY_BROKER``, ``BATCH_STORE``, plus ``REPLICATE_API_TOKEN``/``REPLICATE_BASE_URL``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from celery import Celery

from replicate_async import AsyncReplicate

app = Celery("replicate_batch", broker=os.environ.get("CELERY_BROKER", "redis://localhost:6379/0"))
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={"visibility_timeout": float(os.environ.get("VISIBILITY", "3600"))},
    result_backend=os.environ.get("CELERY_BROKER", "redis://localhost:6379/0"),
)


@app.task(bind=True, name="replicate_batch.run_item")
def run_item(self: Any, ref: str, input: dict[str, Any]) -> dict[str, Any]:
    """Run ``ref`` on ``input`` as the item named by this task's id."""

    async def main() -> dict[str, Any]:
        store = os.environ["BATCH_STORE"]
        async with AsyncReplicate() as client, client.batch(ref, store=store) as batch:
            item = await batch.run_one(self.request.id, input)
            return item.to_json()

    return asyncio.run(main())
