"""The arq recipe with a real broker (Redis): a worker is ``kill -9``ed while its job's
prediction runs; arq runs the job again on another worker, which re-attaches to the
prediction by the job's id. One prediction on the server, one result.

arq 0.28 (the newest release) requires ``redis<6`` while this project's Redis support
uses redis 8, so arq's workers run in an environment of their own, made once per test
session from the registry: arq and its redis-py pinned, the SDK's own dependencies pinned
by ``constraints.txt``, and the SDK itself from this checkout (``PYTHONPATH``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import pytest

from replicate_async.testing import FakeReplicate

from ..redis._servers import RedisServer
from .test_celery import wait_until
from .test_crash import ROOT

CREATE = "/v1/models/fake/echo/predictions"
#: arq and the redis-py it accepts (``redis[hiredis]>=4.2.0,<6``).
ARQ_PINS = ("arq==0.28.0", "redis==5.3.1", "hiredis==3.5.0")
#: Seconds a job may run; arq hands a dead worker's job on after this plus 10 s.
JOB_TIMEOUT = 5


@pytest.fixture(scope="session")
def arq_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python of an environment with arq and the SDK's dependencies."""
    home = tmp_path_factory.mktemp("arq-env")
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True)
    python = home / "venv" / "bin" / "python"
    pinned = {p.split("==")[0] for p in ARQ_PINS}
    constraints = home / "constraints.txt"
    constraints.write_text(
        "".join(
            f"{line}\n"
            for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line.split("==")[0].strip().lower() not in pinned
        )
    )
    needs = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-c", str(constraints), *ARQ_PINS, *needs],
        check=True,
        timeout=600,
    )  # fmt: skip
    return python


def _env(python: Path, redis: str, store: Path, fake: FakeReplicate) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")},
        "PYTHONPATH": str(ROOT),
        "ARQ_REDIS": redis,
        "BATCH_STORE": str(store),
        "JOB_TIMEOUT": str(JOB_TIMEOUT),
        **fake.env_vars,
    }


def _worker(python: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(python), "-m", "arq", "tests.batch.arq_app.WorkerSettings"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _app(python: Path, env: dict[str, str], *args: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run,
        [str(python), "tests/batch/arq_app.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


async def test_a_job_run_again_after_its_worker_died_reattaches(
    arq_python: Path, redis_server: RedisServer, tmp_path: Path
) -> None:
    async with FakeReplicate() as fake:
        fake.set_model_behaviour("fake/echo", duration=4.0)
        redis = f"{redis_server.url.rsplit('/', 1)[0]}/{1 + uuid.uuid4().int % 14}"
        env = _env(arq_python, redis, tmp_path / "batch.db", fake)
        job_id = await _app(arq_python, env, "enqueue", "fake/echo", '{"text": "paid once"}')
        first = _worker(arq_python, env)
        try:
            await wait_until(lambda: fake.count("POST", CREATE) == 1, 60)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            second = _worker(arq_python, env)
            try:
                # The job comes back once the dead worker's in-progress mark expires.
                outcome = json.loads(await _app(arq_python, env, "result", job_id, "60"))
            finally:
                second.terminate()
                second.wait(20)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(10)
        assert outcome["key"] == job_id
        assert outcome["state"] == "succeeded"
        assert outcome["output"] == {"text": "paid once"}
        assert fake.count("POST", CREATE) == 1  # the job run again created nothing
        made = [p for p in fake.predictions.values() if (p.input or {}).get("text") == "paid once"]
        assert [p.id for p in made] == [outcome["prediction_id"]]
