"""What gh, httpie and Replicate's own CLI users reach for: api, auth status, --web, logs -f,
--detach, trainings wait, a confirmation before deleting, --verbose/--debug, completion,
output folders, and a fast start. Each runs the console script as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from ._fakes import CONSOLE_SCRIPT, ThreadedFake, clean_env
from ._term import Terminal, on_terminal, piped

ECHO_VERSION = "e753ff6f8fa89a07a54376fce2feba0bef5eafac8be01f73385aa9cb981577d8"


def test_auth_status_names_the_account_and_never_the_token(server: ThreadedFake) -> None:
    token = server.env["REPLICATE_API_TOKEN"]
    ok = piped(server.env, "auth", "status")
    assert ok.returncode == 0
    assert ok.stdout.splitlines()[0] == (
        f"Logged in to {server.env['REPLICATE_BASE_URL']} as alice (user)"
    )
    as_json = piped(server.env, "auth", "status", "--json")
    assert json.loads(as_json.stdout)["username"] == "alice"
    refused = piped({**server.env, "REPLICATE_API_TOKEN": "r8_wrong_token_123"}, "auth", "status")
    assert refused.returncode == 1
    assert "was refused by" in refused.stderr
    missing = piped({"REPLICATE_BASE_URL": server.env["REPLICATE_BASE_URL"]}, "auth", "status")
    assert missing.returncode == 1
    assert "not logged in: set REPLICATE_API_TOKEN" in missing.stderr
    for result in (ok, as_json, refused):
        assert token not in result.stdout + result.stderr
        assert "r8_wrong_token_123" not in result.stdout + result.stderr


def test_api_sends_raw_requests_and_the_token_only_to_the_api_host(server: ThreadedFake) -> None:
    account = piped(server.env, "api", "/v1/account")
    assert account.returncode == 0
    assert json.loads(account.stdout)["username"] == "alice"
    first = piped(server.env, "api", "predictions", "--jq", ".results[0].id")
    assert first.returncode == 0
    assert len(first.stdout.strip()) > 10
    created = piped(
        server.env, "api", "-X", "POST", "/v1/models/fake/upper/predictions",
        "-f", 'input:={"text": "hi"}', "-H", "Prefer: wait=5", "--jq", ".output",
    )  # fmt: skip
    assert created.stdout == "HI\n"
    sent = server.call(
        lambda fake: fake.requests_matching("POST", "/v1/models/fake/upper/predictions")[-1]
    )
    assert json.loads(sent.body) == {"input": {"text": "hi"}}
    assert sent.headers["prefer"] == "wait=5"
    # Another host (here: the same server by another name) never gets the token.
    elsewhere = server.env["REPLICATE_BASE_URL"].replace("127.0.0.1", "localhost")
    foreign = piped(server.env, "api", f"{elsewhere}/account")
    assert foreign.returncode == 1
    assert foreign.stderr.startswith("Error: 401 ")
    last = server.call(lambda fake: fake.requests_matching("GET", "/v1/account")[-1])
    assert "authorization" not in last.headers
    missing = piped(server.env, "api", "/v1/predictions/nope")
    assert missing.returncode == 1
    assert missing.stderr == "Error: 404 Not Found: prediction nope was not found\n"


def test_web_opens_the_prediction_page_in_the_browser(server: ThreadedFake, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    env = {**server.env, "BROWSER": str(browser)}
    detached = piped(env, "run", "fake/upper", "-i", "text=web", "--detach")
    prediction_id = detached.stdout.strip()
    result = piped(env, "predictions", "get", prediction_id, "--web")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert opened.read_text() == f"https://replicate.com/p/{prediction_id}\n"


def test_logs_of_a_failed_prediction_and_logs_follow(server: ThreadedFake) -> None:
    failed_id = piped(server.env, "run", "fake/fail", "--detach").stdout.strip()
    logs = piped(server.env, "predictions", "logs", failed_id)
    assert logs.returncode == 1  # it failed
    assert logs.stdout == "Running fail model\nTraceback (most recent call last):\n" + (
        "Something went wrong\n"
    )
    shown = piped(server.env, "predictions", "get", failed_id)
    assert "status\tfailed" in shown.stdout
    assert "Something went wrong" in shown.stderr  # the logs, beside the data
    code, text = on_terminal(server.env, "predictions", "get", failed_id)
    assert code == 0
    assert "logs:\nRunning fail model\nTraceback (most recent call last):" in text
    server.call(lambda fake: fake.set_model_behaviour("fake/slow", duration=2.5))
    try:
        running_id = piped(server.env, "run", "fake/slow", "-i", "text=x", "--detach").stdout
        followed = piped(server.env, "predictions", "logs", "-f", running_id.strip())
    finally:
        server.call(lambda fake: fake.reset_model_behaviour("fake/slow"))
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == "Running slow model\n"
    gets = server.call(lambda fake: fake.count("GET", f"/v1/predictions/{running_id.strip()}"))
    assert gets >= 2  # it kept looking until the prediction ended


def test_trainings_wait_prints_the_finished_training(server: ThreadedFake) -> None:
    started = piped(
        server.env, "--jq", ".id", "trainings", "create", f"fake/echo:{ECHO_VERSION}",
        "--destination", "alice/my-model",
    )  # fmt: skip
    training_id = started.stdout.strip()
    waited = piped(server.env, "trainings", "wait", training_id, "--json")
    assert waited.returncode == 0, waited.stderr
    training = json.loads(waited.stdout)
    assert (training["id"], training["status"]) == (training_id, "succeeded")
    assert training["output"]["version"].startswith("alice/my-model:")


def test_deleting_a_deployment_asks_first(server: ThreadedFake) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = piped(
        server.env, "deployments", "create", "--name", name, "--model", "fake/echo",
        "--version", ECHO_VERSION, "--hardware", "cpu",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    ref = f"alice/{name}"
    term = Terminal(server.env, "deployments", "delete", ref)
    term.expect(rf"Delete deployment {ref}\? It cannot be undone \[y/N\]")
    term.type("n\r")
    code, text = term.finish()
    assert code == 1
    assert f"Aborted: deployment {ref} was not deleted." in text
    assert piped(server.env, "deployments", "get", ref).returncode == 0  # still there
    term = Terminal(server.env, "deployments", "delete", ref)
    term.expect(r"\[y/N\]")
    term.type("y\r")
    code, text = term.finish()
    assert code == 0, text
    assert f"deleted {ref}" in text
    assert piped(server.env, "deployments", "get", ref).returncode == 1
    path = f"/v1/deployments/{ref}"
    assert server.call(lambda fake: fake.count("DELETE", path)) == 1


def test_verbose_and_debug_show_the_exchange_with_the_token_redacted(
    server: ThreadedFake,
) -> None:
    token = server.env["REPLICATE_API_TOKEN"]
    verbose = piped(server.env, "--verbose", "account")
    assert verbose.returncode == 0
    url = f"{server.env['REPLICATE_BASE_URL']}/account"
    assert verbose.stderr.splitlines()[0] == f"> GET {url}"
    assert verbose.stderr.splitlines()[1].startswith("< 200 OK (")
    debug = piped(server.env, "--debug", "run", "fake/upper", "-i", "text=dbg")
    assert debug.returncode == 0
    assert debug.stdout == "DBG\n"
    assert "> Authorization: Bearer <redacted>" in debug.stderr
    assert '> {"input":{"text":"dbg"}}' in debug.stderr.splitlines()
    assert token not in debug.stdout + debug.stderr + verbose.stderr


def test_output_folders_are_per_prediction_and_an_unwritable_one_loses_nothing(
    server: ThreadedFake, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = piped(server.env, "run", "fake/image", "-i", "prompt=a", "-i", "num_outputs:=2",
                  "-o", str(out))  # fmt: skip
    second = piped(server.env, "run", "fake/image", "-i", "prompt=b", "-o", str(out))
    assert (first.returncode, second.returncode) == (0, 0)
    folders = sorted(p for p in out.iterdir())
    assert len(folders) == 2
    listing = sorted(sorted(p.name for p in folder.iterdir()) for folder in folders)
    assert listing == [["output-0.png"], ["output-0.png", "output-1.png"]]  # nothing stale
    assert len(first.stdout.split()) == 2
    assert all(Path(p).read_bytes().startswith(b"\x89PNG") for p in first.stdout.split())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    stuck = piped(server.env, "run", "fake/image", "-i", "prompt=c", "-o", str(blocker / "x"))
    assert stuck.returncode == 1
    (saved,) = stuck.stdout.split()
    assert Path(saved).read_bytes().startswith(b"\x89PNG")  # the paid result is kept
    assert f"cannot write to {blocker / 'x'}" in stuck.stderr
    assert "instead" in stuck.stderr
    assert stuck.stderr.splitlines()[-1].startswith("Error: could not save into ")


def test_shell_completion(server: ThreadedFake) -> None:
    env = clean_env({"_REPLICATE_ASYNC_COMPLETE": "bash_source"})
    script = subprocess.run([str(CONSOLE_SCRIPT)], capture_output=True, text=True, env=env)
    assert "_replicate_async_completion" in script.stdout
    words = {"COMP_WORDS": "replicate-async pred", "COMP_CWORD": "1"}
    env = clean_env({"_REPLICATE_ASYNC_COMPLETE": "bash_complete", **words})
    done = subprocess.run([str(CONSOLE_SCRIPT)], capture_output=True, text=True, env=env)
    assert done.stdout.split() == ["plain,predictions"]
    words = {"COMP_WORDS": "replicate-async predictions w", "COMP_CWORD": "2"}
    env = clean_env({"_REPLICATE_ASYNC_COMPLETE": "bash_complete", **words})
    done = subprocess.run([str(CONSOLE_SCRIPT)], capture_output=True, text=True, env=env)
    assert done.stdout.split() == ["plain,wait"]


def test_help_and_version_load_neither_aiohttp_nor_rich() -> None:
    for args in (["--help"], ["--version"]):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "replicate_async", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
        assert result.returncode == 0
        loaded = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
        assert "click" in loaded
        assert not {"aiohttp", "rich", "asyncio", "replicate_async._client"} & loaded


def test_the_same_commands_on_a_terminal(server: ThreadedFake, tmp_path: Path) -> None:
    code, text = on_terminal(server.env, "predictions", "get", "nope")
    assert code == 1
    assert "Error: 404 Not Found: prediction nope was not found" in text
    code, text = on_terminal(server.env, "run", "fake/tokens", "-i", "prompt=one two three")
    assert code == 0
    assert text.rstrip().endswith("one two three")  # joined, not one token a line
    code, text = on_terminal(server.env, "api", "/v1/account")
    assert code == 0
    assert '\n  "username": "alice",' in text  # pretty JSON for people
    code, text = on_terminal(server.env, "auth", "status")
    assert (code, "as alice (user)" in text) == (0, True)
    code, text = on_terminal(server.env, "--verbose", "account")
    assert code == 0
    assert f"> GET {server.env['REPLICATE_BASE_URL']}/account" in text
    assert server.env["REPLICATE_API_TOKEN"] not in text
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, text = on_terminal(
        server.env, "run", "fake/image", "-i", "prompt=t", "-o", str(blocker / "x"), columns=200
    )
    assert code == 1
    assert "instead" in text
    assert ".png" in text  # where the paid output went
    code, text = on_terminal(server.env, "run", "fake/slow", "-i", "text=d", "--detach")
    assert code == 0
    assert "follow it with: replicate-async predictions logs -f " in text
