"""The arq recipe: each job runs one input through a shared batch ledger, keyed by the
job's id, so a job that arq runs again after its worker died re-attaches to the
prediction it already paid for instead of creating another.

arq runs a job at least once: a job whose worker dies stays queued, and another worker
takes it once the dead worker's in-progress mark expires (``job_timeout`` + 10 s).
Configuration comes from the environment here (``ARQ_REDIS``, ``BATCH_STORE``, plus
``REPLICATE_API_TOKEN``/``REPLICATE_BASE_URL``).

arq 0.28 requires ``redis<6``, so it runs in an environment of its own (the batch's SQLite
ledger needs no Redis client). ``python arq_app.py enqueue REF JSON`` prints a job id;
``python arq_app.py result JOB_ID`` waits for the job and prints its result as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from arq.worker import func

from replicate_async import AsyncReplicate


async def run_item(ctx: dict[str, Any], ref: str, input: dict[str, Any]) -> dict[str, Any]:
    """Run ``ref`` on ``input`` as the batch item named by this job's id."""
    store = os.environ["BATCH_STORE"]
    async with AsyncReplicate() as client, client.batch(ref, store=store) as batch:
        item = await batch.run_one(ctx["job_id"], input)
        return item.to_json()


def _settings() -> RedisSettings:
    return RedisSettings.from_dsn(os.environ["ARQ_REDIS"])


class WorkerSettings:
    """``arq tests.batch.arq_app.WorkerSettings``."""

    functions = (func(run_item, name="run_item", max_tries=3),)
    redis_settings = _settings()
    job_timeout = float(os.environ.get("JOB_TIMEOUT", "300"))


async def _command(args: list[str]) -> None:
    pool = await create_pool(_settings())
    try:
        if args[0] == "enqueue":
            job = await pool.enqueue_job("run_item", args[1], json.loads(args[2]))
            assert job is not None
            print(job.job_id, flush=True)
        else:
            result = await Job(args[1], pool).result(timeout=float(args[2]), poll_delay=0.1)
            print(json.dumps(result), flush=True)
    finally:
        await pool.aclose()


if __name__ == "__main__":
    asyncio.run(_command(sys.argv[1:]))
