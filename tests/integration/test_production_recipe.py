"""The service of docs/guides/production.md, run as written under ``uvicorn --workers 2``
against the fake (in a thread, over loopback): SIGTERM with paid runs in flight.

With ``--timeout-graceful-shutdown`` set, every run is canceled on the server exactly once
and the service is gone before the orchestrator's kill; with uvicorn's default (wait for
requests forever) the kill comes first and the runs are left running. Plus the error
mapping of the page, class by class.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ..cli._fakes import ThreadedFake
from ..helpers import eventually

PAGE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "production.md"
MODEL = "meta/meta-llama-3-8b-instruct"
RUNS = 6
#: The orchestrator's grace between SIGTERM and SIGKILL in this test (the page's figure).
KILL_AFTER = 10.0


def service_code() -> str:
    """The page's service, exactly as written (its first Python block)."""
    found = re.search(r"^```python\n(.*?)^```", PAGE.read_text(), re.MULTILINE | re.DOTALL)
    assert found is not None
    return found.group(1)


@pytest.fixture
def fake() -> Iterator[ThreadedFake]:
    threaded = ThreadedFake().start()
    threaded.call(lambda f: f.set_model_behaviour(MODEL, duration=60))
    try:
        yield threaded
    finally:
        threaded.stop()


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(tmp_path: Path, env: dict[str, str], port: int, flags: list[str]) -> Any:
    """``uvicorn app:app --workers 2`` in its own process group (the "orchestrator" kills
    the group), its output in ``uvicorn.log``."""
    command = [sys.executable, "-m", "uvicorn", "app:app", "--workers", "2", "--port", str(port)]
    with (tmp_path / "uvicorn.log").open("w") as log:
        return subprocess.Popen(
            [*command, "--host", "127.0.0.1", *flags],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.mark.parametrize(
    ("flags", "canceled"),
    [(["--timeout-graceful-shutdown", "2"], True), ([], False)],
    ids=["graceful-timeout-set", "uvicorn-default"],
)
async def test_sigterm_with_runs_in_flight(
    fake: ThreadedFake, tmp_path: Path, flags: list[str], canceled: bool
) -> None:
    (tmp_path / "app.py").write_text(service_code())
    port = _port()
    env = {**os.environ, **fake.env, "PORT": str(port), "PUBLIC_URL": f"http://127.0.0.1:{port}"}
    env.pop("REDIS_URL", None)
    process = _serve(tmp_path, env, port, flags)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:

            async def healthy() -> bool:
                try:
                    async with http.get("/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(healthy, timeout=60, every=0.1)
            calls = [
                asyncio.create_task(http.post("/haiku", json={"topic": str(n), "deadline": 120}))
                for n in range(RUNS)
            ]

            def processing(f: Any) -> list[str]:
                return [p.id for p in f.predictions.values() if p.status == "processing"]

            async def all_running() -> bool:
                return len(fake.call(processing)) == RUNS

            await eventually(all_running, timeout=30, every=0.1)
            ids = fake.call(processing)
            process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            try:
                await asyncio.to_thread(process.wait, KILL_AFTER)
                exited_after: float | None = time.monotonic() - started
            except subprocess.TimeoutExpired:
                exited_after = None
                os.killpg(process.pid, signal.SIGKILL)  # the orchestrator's kill
                await asyncio.to_thread(process.wait, 10)
            await asyncio.gather(*calls, return_exceptions=True)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)

    def outcome(f: Any) -> list[tuple[int, str]]:
        return [
            (f.count("POST", f"/v1/predictions/{i}/cancel"), f.predictions[i].status) for i in ids
        ]

    if canceled:
        assert exited_after is not None, (tmp_path / "uvicorn.log").read_text()[-2000:]
        assert fake.call(outcome) == [(1, "canceled")] * RUNS
    else:
        assert exited_after is None  # still waiting for the 60 s runs when killed
        assert fake.call(outcome) == [(0, "processing")] * RUNS


def test_the_error_mapping() -> None:
    namespace: dict[str, Any] = {"__name__": "production_app"}
    exec(compile(service_code(), str(PAGE), "exec"), namespace)
    status_for = namespace["status_for"]
    import replicate_async as r

    def status(cls: type[Exception], *args: Any, **kwargs: Any) -> int:
        return int(status_for(cls(*args, **kwargs)))

    http = {"method": "POST", "url": "u", "headers": {}, "body": None}
    assert status(r.InputValidationError, "bad", []) == 422
    assert status(r.UnprocessableEntityError, "bad", status=422, **http) == 422
    assert status(r.PredictionTimeoutError, "late", None) == 504
    assert status(r.ModelError, "failed", None) == 502
    assert status(r.PredictionCanceledError, "x", None) == 503
    assert status(r.RateLimitError, "slow down", status=429, **http) == 503
    assert status(r.PaymentRequiredError, "no credit", status=402, **http) == 503
    assert status(r.ClientClosedError, "closing") == 503
    assert status(r.RequestMayHaveSucceededTimeoutError, "lost") == 502
    assert status(r.APITimeoutError, "slow") == 504
    assert status(r.APIConnectionError, "down") == 502
    assert status(r.InternalServerError, "oops", status=500, **http) == 502
    assert status(r.AuthenticationError, "token", status=401, **http) == 500
    assert status(r.NotFoundError, "model", status=404, **http) == 500
