"""The entry points: the console script, ``python -m``, the missing-extra hint, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import pytest

from replicate_async import AsyncReplicate, Prediction, __version__
from replicate_async.__main__ import HINT, main

from ._fakes import CONSOLE_SCRIPT, FakeServerProcess, clean_env

TIMEOUT = 30


def test_missing_cli_extra_prints_a_hint_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "click", None)  # what `import click` sees without it
    assert main(["--help"]) == 2
    err = capsys.readouterr().err
    assert err == HINT + "\n"
    assert 'pip install "replicate-async[cli]"' in err


def test_main_returns_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["no-such-command"]) == 2


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "replicate_async", "--help"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env(),
    )
    assert result.returncode == 0
    assert "fake-server" in result.stdout


def test_console_script_against_a_fake_server_process() -> None:
    assert CONSOLE_SCRIPT.exists(), "install the package: pip install -e '.[test]'"
    server = FakeServerProcess("--models", "30").start()
    try:
        env = clean_env(server.env)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(CONSOLE_SCRIPT), *args],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                env=env,
                stdin=subprocess.DEVNULL,
            )

        listed = cli("--json", "models", "list", "--limit", "40")
        assert listed.returncode == 0, listed.stderr
        assert len(listed.stdout.splitlines()) == 40
        assert all(json.loads(line)["owner"] for line in listed.stdout.splitlines())
        ran = cli("run", "fake/upper", "-i", "text=from a shell")
        assert (ran.returncode, ran.stdout) == (0, "FROM A SHELL\n")
        missing = cli("predictions", "get", "nope")
        assert missing.returncode == 1
        assert missing.stderr == ("Error: 404 Not Found: prediction nope was not found\n")
        table = cli("models", "list", "--limit", "3")
        assert "fake/" in table.stdout
        assert server.env["REPLICATE_API_TOKEN"] not in table.stdout + table.stderr
    finally:
        assert server.stop() == 0


async def _newest(env: dict[str, str]) -> Prediction | None:
    async with AsyncReplicate(
        api_token=env["REPLICATE_API_TOKEN"], base_url=env["REPLICATE_BASE_URL"]
    ) as client:
        page = await client.predictions.list()
        return page.results[0] if page.results else None


def test_ctrl_c_cancels_the_prediction_on_the_server() -> None:
    server = FakeServerProcess("--slow-duration", "60").start()
    try:
        # The console script's main(), with SIGINT at its default (a shell's background
        # jobs, and so some CI runners, start processes with SIGINT ignored).
        code = (
            "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from replicate_async.__main__ import main; sys.exit(main(sys.argv[1:]))"
        )
        process = subprocess.Popen(
            [sys.executable, "-c", code, "run", "fake/slow", "-i", "text=x", "--wait", "1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(server.env),
        )
        deadline = time.monotonic() + TIMEOUT
        newest = None
        while time.monotonic() < deadline:
            newest = asyncio.run(_newest(server.env))
            if newest is not None and newest.status == "processing":
                break
            time.sleep(0.1)
        assert newest is not None
        assert newest.model == "fake/slow"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=TIMEOUT)
        assert process.returncode == 130, err
        assert f"Canceling prediction {newest.id} on the server" in err
        assert f"Interrupted: prediction {newest.id} was canceled on the server.\n" in err
        assert "Traceback" not in err
        after = asyncio.run(_newest(server.env))
        assert after is not None
        assert (after.id, after.status) == (newest.id, "canceled")
    finally:
        assert server.stop() == 0
