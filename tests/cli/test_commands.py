"""Every command, run through click's runner against the fake API."""

from __future__ import annotations

import json
import re
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from ._fakes import ThreadedFake
from .conftest import Invoke

ECHO_VERSION = "e753ff6f8fa89a07a54376fce2feba0bef5eafac8be01f73385aa9cb981577d8"


def lines(text: str) -> list[Any]:
    """Parse JSON lines."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- models -----------------------------------------------------------------------------


def test_models_list_json_is_one_object_per_line(invoke: Invoke) -> None:
    result = invoke("--json", "models", "list", "--limit", "7")
    assert result.exit_code == 0, result.stderr
    models = lines(result.stdout)
    assert len(models) == 7
    assert all({"owner", "name"} <= set(m) for m in models)
    assert "fake/echo" in {f"{m['owner']}/{m['name']}" for m in models}


def test_json_lists_are_streamed_lazily(invoke: Invoke, server: ThreadedFake) -> None:
    before = server.call(lambda fake: fake.count("GET", "/v1/models"))
    result = invoke("models", "list", "--json", "--limit", "3")
    assert result.exit_code == 0
    assert len(lines(result.stdout)) == 3
    # Three items need one page, never the whole catalogue.
    assert server.call(lambda fake: fake.count("GET", "/v1/models")) - before == 1
    everything = invoke("--json", "models", "list")
    assert len(lines(everything.stdout)) == 261


def test_models_list_table_defaults_to_50_rows_with_a_hint(invoke: Invoke) -> None:
    result = invoke("models", "list")
    assert result.exit_code == 0
    assert "fake/echo" in result.stdout
    assert "showing the first 50" in result.stderr


def test_models_get_search_versions(invoke: Invoke) -> None:
    shown = invoke("models", "get", "fake/tokens")
    assert shown.exit_code == 0
    assert "prompt" in shown.stdout  # the inputs of the latest version
    assert "fake/tokens" in shown.stdout
    found = lines(invoke("--json", "models", "search", "echo").stdout)
    assert [f"{m['owner']}/{m['name']}" for m in found] == ["fake/echo"]
    versions = lines(invoke("models", "versions", "fake/echo", "--json").stdout)
    assert versions[0]["id"] == ECHO_VERSION


# -- errors -----------------------------------------------------------------------------


def test_api_error_is_one_line_on_stderr_and_exit_1(invoke: Invoke) -> None:
    result = invoke("models", "get", "fake/does-not-exist")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: 404 Not Found: model fake/does-not-exist was not found\n"


def test_bad_token_and_missing_token(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_wrong")
    wrong = invoke("account")
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("Error: 401 ")
    assert "r8_wrong" not in wrong.stderr + wrong.stdout
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    missing = invoke("account")
    assert missing.exit_code == 1
    assert "REPLICATE_API_TOKEN" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_model_failure_and_bad_arguments(invoke: Invoke) -> None:
    failed = invoke("run", "fake/fail", "-i", "error=out of cheese")
    assert failed.exit_code == 1
    *logs, last = failed.stderr.splitlines()
    assert last.startswith("Error: prediction ")
    assert last.endswith("failed: out of cheese")
    assert logs[-2:] == ["Traceback (most recent call last):", "out of cheese"]  # its logs
    assert invoke("run", "not-a-ref").exit_code == 2
    assert invoke("run", "fake/echo", "-i", "no-equals-sign").exit_code == 2
    assert invoke("run", "fake/echo", "-i", "x=@/no/such/file").exit_code == 2
    bad_json = invoke("run", "fake/echo", "-i", "x:={oops")
    assert bad_json.exit_code == 2
    assert "not valid JSON" in bad_json.stderr


def test_no_inputs_at_all_are_checked_too(invoke: Invoke) -> None:
    result = invoke("run", "fake/image")  # prompt is required: known before sending
    assert result.exit_code == 2
    assert (
        result.stderr
        == "Error: the inputs do not fit the model's schema: input: prompt is required\n"
    )


# -- run --------------------------------------------------------------------------------


def test_run_types_inputs(invoke: Invoke, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hi there")
    result = invoke(
        "--json",
        "run",
        "fake/echo",
        "-i", "n:=42",
        "-i", "neg:=-3",
        "-i", "f:=0.5",
        "-i", "e:=1e3",
        "-i", "yes:=true",
        "-i", "no:=false",
        "-i", "l:=[1, 2]",
        "-i", 'd:={"a": null}',
        "-i", "s=hello world",
        "-i", "text=1984",
        "-i", "bracket=[cinematic] a lighthouse",
        "-i", 'quoted="42"',
        "-i", "zip=02139",
        "-i", "at=@@handle",
        "-i", "empty=",
        "-i", f"file=@{note}",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (output,) = lines(result.stdout)
    assert output == {
        "n": 42,
        "neg": -3,
        "f": 0.5,
        "e": 1000.0,
        "yes": True,
        "no": False,
        "l": [1, 2],
        "d": {"a": None},
        "s": "hello world",
        "text": "1984",
        "bracket": "[cinematic] a lighthouse",
        "quoted": '"42"',
        "zip": "02139",
        "at": "@handle",
        "empty": "",
        "file": "data:text/plain;base64,aGkgdGhlcmU=",
    }


def test_run_prints_plain_output(invoke: Invoke) -> None:
    result = invoke("run", "fake/upper", "-i", "text=shout")
    assert result.exit_code == 0
    assert result.stdout == "SHOUT\n"


def test_run_saves_file_outputs(invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = invoke("run", "fake/image", "-i", "prompt=cat", "-i", "num_outputs=2", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    (folder,) = out.iterdir()  # one folder per prediction: reusing -o never overwrites
    saved = sorted(folder.iterdir())
    assert [p.name for p in saved] == ["output-0.png", "output-1.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in saved)
    assert result.stdout.split() == [str(p) for p in saved]


def test_run_saves_files_served_by_url(
    invoke: Invoke, server: ThreadedFake, tmp_path: Path
) -> None:
    # Without a Prefer: wait hold, the outputs are URLs on the server, downloaded.
    server.call(lambda fake: fake.set_model_behaviour("fake/image", duration=0.2))
    try:
        result = invoke(
            "run", "fake/image", "-i", "prompt=dog", "--wait", "0", "-o", str(tmp_path), "--json"
        )
    finally:
        server.call(lambda fake: fake.reset_model_behaviour("fake/image"))
    assert result.exit_code == 0, result.stderr
    (paths,) = lines(result.stdout)
    assert len(paths) == 1
    assert Path(paths[0]).name == "out-0.png"  # named after the URL
    assert Path(paths[0]).read_bytes().startswith(b"\x89PNG")


def test_run_stream_prints_tokens(invoke: Invoke) -> None:
    result = invoke("run", "fake/tokens", "-i", "prompt=one two three", "--stream")
    assert result.exit_code == 0
    assert result.stdout == "one two three\n"
    events = lines(invoke("run", "fake/tokens", "-i", "prompt=a b", "--stream", "--json").stdout)
    assert [e["data"] for e in events if e["event"] == "output"] == ["a", " b"]
    assert events[-1]["event"] == "done"


def test_run_timeout_cancels_on_the_server(invoke: Invoke) -> None:
    result = invoke("run", "fake/slow", "-i", "text=zzz", "--timeout", "1")
    assert result.exit_code == 1
    assert "canceled on the server" in result.stderr
    newest = lines(invoke("--json", "predictions", "list", "--limit", "1").stdout)[0]
    assert newest["model"] == "fake/slow"
    assert newest["status"] == "canceled"


def test_run_on_a_deployment_and_a_version(invoke: Invoke) -> None:
    on_deployment = invoke("--json", "run", "alice/echo-deployment", "--deployment", "-i", "x:=1")
    assert lines(on_deployment.stdout) == [{"x": 1}]
    on_version = invoke("--json", "run", f"fake/echo:{ECHO_VERSION}", "-i", "y:=2")
    assert lines(on_version.stdout) == [{"y": 2}]


# -- predictions ------------------------------------------------------------------------


def test_predictions_lifecycle(invoke: Invoke) -> None:
    created = lines(invoke("--json", "predictions", "create", "fake/slow", "-i", "text=x").stdout)
    prediction_id = created[0]["id"]
    assert created[0]["status"] in ("starting", "processing")
    shown = invoke("predictions", "get", prediction_id)
    assert prediction_id in shown.stdout
    listed = lines(invoke("predictions", "list", "--json", "--limit", "5").stdout)
    assert prediction_id in {p["id"] for p in listed}
    canceled = lines(invoke("predictions", "cancel", prediction_id, "--json").stdout)
    assert canceled[0]["status"] == "canceled"
    waited = invoke("predictions", "wait", prediction_id)
    assert waited.exit_code == 1  # it ended, but not succeeded
    assert "canceled" in waited.stderr


def test_predictions_create_with_wait_then_wait(invoke: Invoke) -> None:
    created = lines(
        invoke(
            "--json", "predictions", "create", "fake/upper", "-i", "text=a", "--wait", "5"
        ).stdout
    )
    assert created[0]["status"] == "succeeded"
    waited = invoke("predictions", "wait", created[0]["id"], "--json")
    assert waited.exit_code == 0
    assert lines(waited.stdout)[0]["output"] == "A"
    on_version = invoke("--json", "predictions", "create", ECHO_VERSION, "-i", "v=1")
    assert lines(on_version.stdout)[0]["version"] == ECHO_VERSION


# -- the other resources ----------------------------------------------------------------


def test_trainings(invoke: Invoke) -> None:
    listed = lines(invoke("--json", "trainings", "list").stdout)
    assert listed
    first = listed[0]["id"]
    assert first in invoke("trainings", "get", first).stdout
    missing = invoke(
        "trainings", "create", f"fake/echo:{ECHO_VERSION}", "--destination", "alice/nowhere"
    )
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: 404 Not Found: ")


def test_collections_hardware_account(invoke: Invoke) -> None:
    slugs = [c["slug"] for c in lines(invoke("--json", "collections", "list").stdout)]
    assert "utilities" in slugs
    utilities = invoke("collections", "get", "utilities")
    assert "fake/echo" in utilities.stdout
    skus = [h["sku"] for h in lines(invoke("hardware", "list", "--json").stdout)]
    assert "cpu" in skus
    assert invoke("hardware", "list").stdout.count("gpu-") >= 2
    assert lines(invoke("account", "--json").stdout)[0]["username"] == "alice"
    assert "alice" in invoke("account").stdout


def test_deployments_crud(invoke: Invoke) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = invoke(
        "deployments", "create", "--name", name, "--model", "fake/echo",
        "--version", ECHO_VERSION, "--hardware", "cpu", "--json",
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    assert lines(created.stdout)[0]["name"] == name
    ref = f"alice/{name}"
    updated = lines(invoke("deployments", "update", ref, "--max-instances", "3", "--json").stdout)
    assert updated[0]["current_release"]["configuration"]["max_instances"] == 3
    assert ref in invoke("deployments", "list").stdout
    assert "cpu" in invoke("deployments", "get", ref).stdout
    refused = invoke("deployments", "delete", ref)  # not a terminal: --yes is needed
    assert refused.exit_code == 2
    assert "needs --yes" in refused.stderr
    deleted = invoke("deployments", "delete", ref, "--yes")
    assert deleted.exit_code == 0
    assert invoke("deployments", "get", ref).exit_code == 1


def test_files_crud(invoke: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    uploaded = invoke("files", "upload", str(path), "--metadata", '{"k": "v"}', "--json")
    assert uploaded.exit_code == 0, uploaded.stderr
    file = lines(uploaded.stdout)[0]
    assert file["name"] == "data.csv"
    assert file["metadata"] == {"k": "v"}
    assert file["id"] in {f["id"] for f in lines(invoke("--json", "files", "list").stdout)}
    assert "data.csv" in invoke("files", "get", file["id"]).stdout
    refused = invoke("files", "delete", file["id"])  # not a terminal: --yes is needed
    assert (refused.exit_code, refused.stderr) == (
        2, f"Usage: cli files delete [OPTIONS] FILE_ID\nTry 'cli files delete --help' for help.\n\n"
        f"Error: deleting file {file['id']} needs --yes when not on a terminal\n",
    )  # fmt: skip
    assert invoke("files", "delete", file["id"], "--yes").exit_code == 0
    assert invoke("files", "get", file["id"]).exit_code == 1
    assert invoke("files", "upload", str(path), "--metadata", "[1]").exit_code == 2


def test_help_lists_every_command(invoke: Invoke) -> None:
    text = invoke("--help").stdout
    for command in (
        "models", "predictions", "run", "trainings", "collections", "hardware",
        "deployments", "files", "account", "demo", "fake-server",
    ):  # fmt: skip
        assert command in text


def test_predictions_wait_timeout_keep_running(invoke: Invoke) -> None:
    created = lines(invoke("--json", "predictions", "create", "fake/slow", "-i", "text=k").stdout)
    prediction_id = created[0]["id"]
    kept = invoke("predictions", "wait", prediction_id, "--timeout", "0.5", "--keep-running")
    assert kept.exit_code == 3  # stopped waiting; it may still be running
    assert kept.stderr == (
        f"Error: prediction {prediction_id} did not finish within 0.5s and was left running "
        f"(check it with `replicate-async predictions get {prediction_id}`)\n"
    )
    assert lines(invoke("--json", "predictions", "get", prediction_id).stdout)[0]["status"] in (
        "starting",
        "processing",
    )
    canceled = invoke("predictions", "wait", prediction_id, "--timeout", "0.5")
    assert canceled.exit_code == 1
    assert "canceled on the server" in canceled.stderr
    final = lines(invoke("--json", "predictions", "get", prediction_id).stdout)[0]
    assert final["status"] == "canceled"


def test_fake_server_reports_a_busy_port(invoke: Invoke) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("fake-server", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot serve on 127.0.0.1:{port}: ")


def test_run_stream_of_a_failing_model_says_it_failed(invoke: Invoke) -> None:
    result = invoke("run", "fake/fail", "--stream", "-i", "error=boom")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert re.fullmatch(r"Error: prediction \w+ failed: boom\n", result.stderr)
