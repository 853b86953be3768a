"""Exit statuses that say what happened, and the small frictions of the third round, seen
as a user meets them: on a pseudo-terminal (Ctrl-C is the byte 0x03) or in a pipe."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from replicate_async.cli._app import EPILOG

from ._fakes import ThreadedFake
from ._term import Terminal, on_terminal, piped

CTRL_C = "\x03"


@pytest.fixture
def slow(server: ThreadedFake) -> Iterator[ThreadedFake]:
    """fake/slow and fake/tokens take a minute (reset afterwards)."""
    for model in ("fake/slow", "fake/tokens"):
        server.call(lambda fake, m=model: fake.set_model_behaviour(m, duration=60))
    try:
        yield server
    finally:
        server.call(lambda fake: fake.reset_model_behaviour("fake/slow"))
        server.call(lambda fake: fake.reset_model_behaviour("fake/tokens"))


def _detached(server: ThreadedFake, model: str = "fake/slow") -> str:
    result = piped(server.env, "run", model, "-i", "text=x", "--detach")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# -- exit statuses ------------------------------------------------------------------------


def test_a_timeout_while_following_logs_is_the_still_running_status(slow: ThreadedFake) -> None:
    prediction_id = _detached(slow)
    result = piped(slow.env, "--timeout", "1", "predictions", "logs", "-f", prediction_id)
    assert result.returncode == 3
    assert result.stderr == (
        f"Error: stopped following after 1s (--timeout): prediction {prediction_id} keeps "
        f"running (not canceled); cancel it with `replicate-async predictions cancel "
        f"{prediction_id}`\n"
    )


def test_ctrl_c_at_a_delete_prompt_is_130_and_deletes_nothing(server: ThreadedFake) -> None:
    path = Path(f"/tmp/h30-{uuid.uuid4().hex}.txt")
    path.write_text("keep me")
    try:
        file_id = piped(server.env, "files", "upload", str(path), "--jq", ".id").stdout.strip()
    finally:
        path.unlink()
    term = Terminal(server.env, "files", "delete", file_id)
    term.expect(rf"Delete file {file_id}\? It cannot be undone \[y/N\]")
    term.type(CTRL_C)
    code, text = term.finish()
    assert code == 130, text
    assert "Interrupted: nothing was deleted." in text
    assert piped(server.env, "files", "get", file_id).returncode == 0
    term = Terminal(server.env, "files", "delete", file_id)
    term.expect(r"\[y/N\]")
    term.type("y\r")
    assert term.finish()[0] == 0
    assert piped(server.env, "files", "get", file_id).returncode == 1


def test_two_ctrl_cs_a_few_ms_apart_while_polling_always_print_the_id(
    slow: ThreadedFake,
) -> None:
    for _ in range(4):
        term = Terminal(slow.env, "run", "fake/slow", "-i", "text=x", "--wait", "0")
        prediction_id = term.expect(r"Running fake/slow: prediction (\w+)").group(1)
        time.sleep(0.2)
        os.killpg(term.process.pid, signal.SIGINT)
        time.sleep(0.003)
        os.killpg(term.process.pid, signal.SIGINT)
        code, text = term.finish()
        last = text.strip().splitlines()[-1]
        assert code in (130, 3), text
        assert prediction_id in last, text


# -- friction -----------------------------------------------------------------------------


def test_get_views_keep_long_values_whole_in_a_pipe(server: ThreadedFake) -> None:
    text = "word " * 100
    created = piped(server.env, "--jq", ".id", "predictions", "create", "fake/echo",
                    "-i", f"text={text}", "--wait", "5")  # fmt: skip
    prediction_id = created.stdout.strip()
    shown = dict(
        line.split("\t", 1) for line in piped(server.env, "predictions", "get", prediction_id)
        .stdout.splitlines()
    )  # fmt: skip
    assert shown["input"] == '{"text": "' + text + '"}'
    assert shown["output"] == '{"text": "' + text + '"}'
    _, screen = on_terminal(server.env, "predictions", "get", prediction_id, columns=160)
    assert "…" in screen  # a terminal still gets the first 200 characters


def test_the_logs_spinner_says_what_the_server_answered(slow: ThreadedFake) -> None:
    prediction_id = _detached(slow)
    term = Terminal(slow.env, "predictions", "logs", "-f", prediction_id)
    term.expect(rf"Prediction {prediction_id} is (starting|processing), no logs yet")
    term.type(CTRL_C)
    code, text = term.finish()
    assert code == 130
    assert "Waiting for 127.0.0.1" not in text
    piped(slow.env, "predictions", "cancel", prediction_id)


def test_runs_elapsed_counter_goes_on_after_the_held_create(slow: ThreadedFake) -> None:
    term = Terminal(slow.env, "run", "fake/slow", "-i", "text=x", "--wait", "2")
    match = term.expect(r"Running fake/slow: prediction (\w+)… (\d+\.\d)s")
    assert float(match.group(2)) >= 1.9  # counted from the start, not from the answer
    term.type(CTRL_C)
    assert term.finish()[0] == 130


def test_key_value_views_and_the_help_wrap_between_words_at_60_columns(
    server: ThreadedFake,
) -> None:
    _, screen = on_terminal(server.env, "models", "get", "stability-ai/sdxl", columns=60)
    description = "A text-to-image generative AI model that creates beautiful images"
    assert " ".join(screen.split()).count(description) == 1  # every word whole
    view = screen.split("\ninputs")[0].splitlines()
    assert max(len(line.rstrip()) for line in view) <= 60  # wrapped by us, not the terminal
    _, help_text = on_terminal(server.env, "--help", columns=60)
    lines = help_text.splitlines()
    assert max(len(line) for line in lines) <= 60
    epilog_words = EPILOG.split()
    shown_words = help_text.split()
    assert all(word in shown_words for word in epilog_words)


def test_persistent_429s_are_said_once_in_a_pipe(server: ThreadedFake) -> None:
    fault = server.call(
        lambda fake: fake.faults.add("/v1/account", status=429, times=3, retry_after=0)
    )
    try:
        result = piped(server.env, "account")
    finally:
        server.call(lambda fake: fault.remove())
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("the API keeps answering 429 (rate limited)") == 1
    assert "alice" in result.stdout


def test_debug_shows_response_bodies_without_the_token(server: ThreadedFake) -> None:
    result = piped(server.env, "--debug", "account")
    assert result.returncode == 0
    assert '< {"type":"user","username":"alice",' in result.stderr  # the response body
    assert server.env["REPLICATE_API_TOKEN"] not in result.stderr
    assert "Authorization: Bearer <redacted>" in result.stderr


def test_trainings_list_has_no_empty_destination_column(server: ThreadedFake) -> None:
    rows = piped(server.env, "trainings", "list").stdout.splitlines()
    assert rows
    assert all(len(row.split("\t")) == 4 for row in rows)  # id, model, status, created
    _, screen = on_terminal(server.env, "trainings", "list", columns=160)
    assert "destination" not in screen


def test_files_download(server: ThreadedFake, tmp_path: Path) -> None:
    source = tmp_path / "report.csv"
    source.write_bytes(b"a,b\n1,2\n")
    file_id = piped(server.env, "files", "upload", str(source), "--jq", ".id").stdout.strip()
    query = server.call(lambda fake: fake.signed_download_params(file_id))
    target = tmp_path / "copy.csv"
    args = ("--expiry", query["expiry"], "--signature", query["signature"])
    saved = piped(server.env, "files", "download", file_id, *args, "-o", str(target))
    assert saved.returncode == 0, saved.stderr
    assert target.read_bytes() == b"a,b\n1,2\n"
    again = piped(server.env, "files", "download", file_id, *args, "-o", str(target))
    assert again.returncode == 2
    assert again.stderr == f"Error: {target} exists already (choose another with -o PATH)\n"
    url = server.call(lambda fake: fake.signed_download_url(file_id))
    to_stdout = piped(server.env, "files", "download", url, "-o", "-")
    assert (to_stdout.returncode, to_stdout.stdout) == (0, "a,b\n1,2\n")
    forged = piped(server.env, "files", "download", file_id, "--expiry", query["expiry"],
                   "--signature", "forged", "-o", "-")  # fmt: skip
    assert forged.returncode == 1
    assert "signature is wrong" in forged.stderr


def test_canceling_starts_on_its_own_line_after_streamed_output(slow: ThreadedFake) -> None:
    prompt = " ".join(f"w{i}" for i in range(200))
    term = Terminal(slow.env, "run", "fake/tokens", "-i", f"prompt={prompt}", "--stream")
    term.expect(r"w0 w1")
    term.type(CTRL_C)
    code, text = term.finish()
    assert code == 130, text
    assert re.search(r"(?m)^Canceling prediction \w+ on the server", text), text
