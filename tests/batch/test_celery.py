"""The Celery recipe with a real broker (Redis): a worker is ``kill -9``ed while its
task's prediction runs; Celery redelivers the task to a new worker, which re-attaches to
the prediction by the task's id. One prediction on the server, one result."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from replicate_async.testing import FakeReplicate

from ..redis._servers import RedisServer
from .test_crash import ROOT

CREATE = "/v1/models/fake/echo/predictions"


def worker(env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.batch.celery_app", "worker",
         "--pool=solo", "--concurrency=1", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-n", f"{name}@%h", "--loglevel=WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def wait_until(check: Any, limit: float) -> None:
    for _ in range(int(limit / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_a_task_redelivered_after_its_worker_died_reattaches(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with FakeReplicate() as fake:
        fake.set_model_behaviour("fake/echo", duration=4.0)
        broker = f"{redis_server.url.rsplit('/', 1)[0]}/{1 + uuid.uuid4().int % 14}"
        env = {
            **os.environ,
            "CELERY_BROKER": broker,
            "BATCH_STORE": str(tmp_path / "batch.db"),
            "VISIBILITY": "2",
            **fake.env_vars,
        }
        from . import celery_app

        celery_app.app.conf.broker_url = broker
        celery_app.app.conf.result_backend = broker
        first = worker(env, "first")
        try:
            result = celery_app.run_item.apply_async(("fake/echo", {"text": "paid once"}))
            await wait_until(lambda: fake.count("POST", CREATE) == 1, 30)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            await asyncio.sleep(2.5)  # past the visibility timeout: the task comes back
            second = worker(env, "second")
            try:
                outcome = await asyncio.to_thread(result.get, timeout=60)
            finally:
                second.terminate()
                second.wait(20)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)
        assert outcome["key"] == result.id
        assert outcome["state"] == "succeeded"
        assert outcome["output"] == {"text": "paid once"}
        assert fake.count("POST", CREATE) == 1  # the redelivered task created nothing
        made = [p for p in fake.predictions.values() if (p.input or {}).get("text") == "paid once"]
        assert [p.id for p in made] == [outcome["prediction_id"]]
