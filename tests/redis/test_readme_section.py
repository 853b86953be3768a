"""The "Running on many workers" guide: its programs run as written, with Redis and without."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ._servers import ROOT, FakeProcess, RedisServer, free_port, python_env


def section_blocks() -> list[str]:
    text = (ROOT / "docs" / "guides" / "many-workers.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProcess]:
    server = FakeProcess()
    try:
        yield server
    finally:
        server.close()


def run_block(code: str, fake: FakeProcess, redis_url: str, tmp_path: Path) -> str:
    script = tmp_path / f"block_{uuid.uuid4().hex[:6]}.py"
    script.write_text(code)
    env = python_env() | {
        "REPLICATE_BASE_URL": fake.base_url,
        "REPLICATE_API_TOKEN": fake.token,
        "REDIS_URL": redis_url,
    }
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_the_section_has_its_two_programs() -> None:
    assert len(section_blocks()) == 2


def test_the_fleet_program_runs_on_redis(
    fake: FakeProcess, redis_server: RedisServer, tmp_path: Path
) -> None:
    output = run_block(section_blocks()[0], fake, redis_server.url, tmp_path)
    assert "['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded']" in output
    assert "{'outages': 0, 'in_flight': 0}" in output
    assert "Redis unreachable" not in output
    keys = redis.Redis.from_url(redis_server.url)
    try:
        assert keys.exists("{replicate_async}:rate:create:tat")  # the shared limiter was used
    finally:
        keys.close()


def test_the_webhook_program_runs_on_redis(
    fake: FakeProcess, redis_server: RedisServer, tmp_path: Path
) -> None:
    output = run_block(section_blocks()[1], fake, redis_server.url, tmp_path)
    assert "['hi', 'yo'] {'deliveries': 2, 'safety_polls': 0}" in output
    assert "Redis unreachable" not in output


@pytest.mark.parametrize("block", [0, 1])
def test_without_redis_the_programs_still_finish(
    block: int, fake: FakeProcess, tmp_path: Path
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    output = run_block(section_blocks()[block], fake, dead, tmp_path)
    assert "succeeded" in output or "'safety_polls': 0" in output
    assert "Redis unreachable" in output
