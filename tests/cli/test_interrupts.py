"""Ctrl-C, timeouts and lost connections, typed and seen as a user would: the console script
on a pseudo-terminal (Ctrl-C is the byte 0x03, turned into SIGINT by the terminal) or in a
pipe, asserting what it says, its exit status and what the server saw."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from replicate_async import AsyncReplicate, Prediction

from ._fakes import CONSOLE_SCRIPT, FakeServerProcess, ThreadedFake, clean_env
from ._term import Terminal, piped

CTRL_C = "\x03"


@pytest.fixture
def slow(server: ThreadedFake) -> Iterator[ThreadedFake]:
    """fake/slow takes a minute (reset afterwards)."""
    server.call(lambda fake: fake.set_model_behaviour("fake/slow", duration=60))
    try:
        yield server
    finally:
        server.call(lambda fake: fake.reset_model_behaviour("fake/slow"))


def _status(server: ThreadedFake, prediction_id: str) -> str:
    found = server.call(lambda fake: fake.prediction(prediction_id))
    assert found is not None
    return str(found["status"])


def _cancels(server: ThreadedFake, prediction_id: str) -> int:
    path = f"/v1/predictions/{prediction_id}/cancel"
    return server.call(lambda fake: fake.count("POST", path))


def test_ctrl_c_while_running_cancels_and_says_so_once_confirmed(slow: ThreadedFake) -> None:
    term = Terminal(slow.env, "run", "fake/slow", "-i", "text=x", "--wait", "0")
    prediction_id = term.expect(r"Running fake/slow: prediction (\w+)").group(1)
    term.type(CTRL_C)
    code, text = term.finish()
    assert code == 130, text
    assert f"Canceling prediction {prediction_id} on the server" in text
    assert f"Interrupted: prediction {prediction_id} was canceled on the server." in text
    assert "Traceback" not in text
    assert _cancels(slow, prediction_id) == 1
    assert _status(slow, prediction_id) == "canceled"


def test_ctrl_c_during_the_held_create_still_cancels_it(slow: ThreadedFake) -> None:
    term = Terminal(slow.env, "run", "fake/slow", "-i", "text=held", "--wait", "5")
    term.expect(r"Starting fake/slow")
    term.type(CTRL_C)
    term.expect(r"Waiting for the server's answer, to cancel the prediction")
    code, text = term.finish()
    assert code == 130, text
    prediction_id = term.expect(
        r"Interrupted: prediction (\w+) was canceled on the server\."
    ).group(1)
    assert _status(slow, prediction_id) == "canceled"


def test_a_second_ctrl_c_stops_waiting_for_the_cancel_and_names_the_prediction(
    slow: ThreadedFake,
) -> None:
    fault = slow.call(
        lambda fake: fake.faults.add("/v1/predictions/*/cancel", method="POST", delay=30)
    )
    try:
        term = Terminal(slow.env, "run", "fake/slow", "-i", "text=x", "--wait", "0")
        prediction_id = term.expect(r"Running fake/slow: prediction (\w+)").group(1)
        term.type(CTRL_C)
        term.expect(r"Ctrl-C again to stop waiting")
        term.type(CTRL_C)
        code, text = term.finish()
    finally:
        slow.call(lambda fake: fake.faults.remove(fault))
    assert code == 3, text
    assert (
        f"Error: stopped waiting for the cancel: prediction {prediction_id} may still be "
        "running" in " ".join(text.split())
    )
    assert "was canceled" not in text
    assert _status(slow, prediction_id) == "processing"
    piped(slow.env, "predictions", "cancel", prediction_id)


def test_wait_keep_running_and_ctrl_c_never_claims_a_cancel(slow: ThreadedFake) -> None:
    detached = piped(slow.env, "run", "fake/slow", "-i", "text=k", "--detach")
    assert detached.returncode == 0, detached.stderr
    prediction_id = detached.stdout.strip()  # --detach prints the id and leaves
    assert _status(slow, prediction_id) in ("starting", "processing")
    term = Terminal(slow.env, "predictions", "wait", prediction_id, "--keep-running")
    term.expect(rf"Waiting for prediction {prediction_id}")
    term.type(CTRL_C)
    code, text = term.finish()
    assert code == 130, text
    assert f"prediction {prediction_id} was left running (not canceled)" in text
    assert "was canceled" not in text
    assert _cancels(slow, prediction_id) == 0
    assert _status(slow, prediction_id) == "processing"
    piped(slow.env, "predictions", "cancel", prediction_id)


def test_a_timeout_cancels_and_prints_the_id(slow: ThreadedFake) -> None:
    result = piped(slow.env, "run", "fake/slow", "-i", "text=t", "--timeout", "3", "--wait", "0")
    assert result.returncode == 1
    *_, canceling, error = result.stderr.splitlines()
    prediction_id = canceling.split()[2]
    assert canceling.startswith(f"Canceling prediction {prediction_id} on the server")
    assert error == (
        f"Error: no result within 3s: prediction {prediction_id} was canceled on the server"
    )
    assert _status(slow, prediction_id) == "canceled"


async def _newest(env: dict[str, str]) -> Prediction | None:
    async with AsyncReplicate(
        api_token=env["REPLICATE_API_TOKEN"], base_url=env["REPLICATE_BASE_URL"]
    ) as client:
        page = await client.predictions.list()
        return page.results[0] if page.results else None


def test_a_server_killed_mid_run_leaves_the_id_and_exit_3() -> None:
    server = FakeServerProcess("--slow-duration", "60").start()
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "run", "fake/slow", "-i", "text=x", "--wait", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(server.env),
    )
    try:
        newest = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            newest = asyncio.run(_newest(server.env))
            if newest is not None and newest.status == "processing":
                break
            time.sleep(0.1)
        assert newest is not None
    finally:
        server.stop()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 3, err
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("Error: ")
    assert line.endswith(
        f"; prediction {newest.id} may still be running "
        f"(check with `replicate-async predictions get {newest.id}`)"
    )
    assert "aiohttp" not in line
    assert "ssl:default" not in line


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_refused_connection_is_one_clear_line_with_a_spinner_meanwhile() -> None:
    port = _closed_port()
    env = {"REPLICATE_BASE_URL": f"http://127.0.0.1:{port}/v1", "REPLICATE_API_TOKEN": "r8_x"}
    expected = (
        f"Error: cannot connect to http://127.0.0.1:{port}: connection refused "
        "(is the base URL right? --base-url)"
    )
    result = piped(env, "account")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == expected + "\n"  # nothing else: no jargon, no traceback
    term = Terminal(env, "account")
    term.expect(rf"Waiting for 127\.0\.0\.1:{port}")  # the retries are not silent
    code, text = term.finish()
    assert code == 1
    assert expected in " ".join(text.split())


def test_a_server_that_never_answers_is_bounded_by_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete, nothing is ever read or answered
        port = silent.getsockname()[1]
        env = {"REPLICATE_BASE_URL": f"http://127.0.0.1:{port}/v1", "REPLICATE_API_TOKEN": "r8_x"}
        result = piped(env, "--timeout", "1", "account")
    assert result.returncode == 1
    assert result.stderr == f"Error: no answer from 127.0.0.1:{port} within 1s (--timeout)\n"


def test_a_404_names_what_and_a_base_url_without_v1_gets_a_hint(server: ThreadedFake) -> None:
    missing = piped(server.env, "predictions", "get", "nope")
    assert missing.returncode == 1
    assert missing.stderr == "Error: 404 Not Found: prediction nope was not found\n"
    origin = server.env["REPLICATE_BASE_URL"].removesuffix("/v1")
    wrong = piped({**server.env, "REPLICATE_BASE_URL": origin}, "models", "get", "fake/echo")
    assert wrong.returncode == 1
    assert wrong.stderr == (
        f"Error: 404 Not Found: model fake/echo was not found; the base URL {origin} has no "
        f"/v1 (did you mean {origin}/v1?)\n"
    )


def test_ctrl_c_while_streaming_cancels_and_confirms(server: ThreadedFake) -> None:
    server.call(lambda fake: fake.set_model_behaviour("fake/tokens", duration=60))
    try:
        words = " ".join(f"w{i}" for i in range(40))
        term = Terminal(server.env, "run", "fake/tokens", "-i", f"prompt={words}", "--stream")
        term.expect(r"w0 w1")  # tokens appear as they are generated
        term.type(CTRL_C)
        code, text = term.finish()
    finally:
        server.call(lambda fake: fake.reset_model_behaviour("fake/tokens"))
    assert code == 130, text
    prediction_id = term.expect(
        r"Interrupted: prediction (\w+) was canceled on the server\."
    ).group(1)
    assert "w39" not in text
    assert _cancels(server, prediction_id) == 1
    assert _status(server, prediction_id) == "canceled"


def test_a_second_ctrl_c_during_the_held_create_says_plainly_what_is_unknown(
    slow: ThreadedFake,
) -> None:
    marker = f"text=held-{time.monotonic_ns()}"
    term = Terminal(slow.env, "run", "fake/slow", "-i", marker, "--wait", "20")
    term.expect(r"Starting fake/slow")
    term.type(CTRL_C)
    term.expect(r"Waiting for the server's answer, to cancel the prediction")
    term.type(CTRL_C)
    code, text = term.finish()
    assert code == 3, text
    assert "the prediction may have been created and may be running; its id is unknown" in (
        " ".join(text.split())
    )
    assert "canceled" not in text
    created = slow.call(
        lambda fake: [
            r for r in fake.requests_matching("POST", "/v1/models/fake/slow/predictions")
            if marker.encode()[5:] in r.body
        ]
    )  # fmt: skip
    assert len(created) == 1  # it was sent once, and never resent
