"""No input ends in a traceback: every exception becomes one ``Error:`` line and an exit
status from the documented set, and a finished run's output is printed before a ``--jq``
that does not fit it can fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replicate_async.cli import _output

from ._fakes import ThreadedFake
from ._term import piped
from .conftest import Invoke

DEEP = "[" * 30_000 + "]" * 30_000


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.strip()][-1:]
    assert line.startswith("Error: "), stderr
    return line


def test_a_jq_path_that_does_not_fit_a_finished_run_prints_its_output_whole(
    server: ThreadedFake,
) -> None:
    path = "/v1/models/fake/upper/predictions"
    before = server.call(lambda fake: fake.count("POST", path))
    result = piped(server.env, "run", "fake/upper", "-i", "text=hi", "--jq", ".foo")
    assert result.returncode == 2
    assert result.stdout == '"HI"\n'  # the paid output, not lost
    assert _one_error_line(result.stderr) == (
        "Error: --jq: cannot take .foo of a string; the whole value is printed instead"
    )
    assert server.call(lambda fake: fake.count("POST", path)) == before + 1  # ran once
    llm = piped(server.env, "run", "meta/meta-llama-3-8b-instruct", "-i", "prompt=a b",
                "--jq", ".id")  # fmt: skip
    assert llm.returncode == 2
    assert json.loads(llm.stdout) == ["a", " b"]
    assert "cannot take .id of an array" in _one_error_line(llm.stderr)


def test_jq_paths_that_do_not_fit_lists_and_objects(invoke: Invoke) -> None:
    listed = invoke("predictions", "list", "--jq", ".id.x", "--limit", "2")
    assert listed.exit_code == 2
    assert "id" in json.loads(listed.stdout.splitlines()[0])  # the first object, whole
    assert "cannot take .x of a string" in _one_error_line(listed.stderr)
    indexed = invoke("account", "--jq", ".[0]")
    assert indexed.exit_code == 2
    assert json.loads(indexed.stdout)["username"] == "alice"
    assert "cannot index an object with [0]" in _one_error_line(indexed.stderr)


def test_huge_jq_indexes_and_filters_are_no_traceback(invoke: Invoke) -> None:
    index = invoke("account", "--jq", f".username,.[{'9' * 5000}]")
    assert index.exit_code == 2
    assert "cannot index an object" in _one_error_line(index.stderr)
    steps = invoke("account", "--jq", ".a" * 5000)
    assert (steps.exit_code, steps.stdout) == (0, "null\n")  # jq: a missing field is null


def test_json_nested_30000_deep_is_a_usage_error_wherever_it_is_given(
    invoke: Invoke, tmp_path: Path
) -> None:
    deep_file = tmp_path / "deep.json"
    deep_file.write_text('{"text": ' + DEEP + "}")
    for args in (
        ("run", "fake/echo", "-i", f"k:={DEEP}"),
        ("run", "fake/echo", "--input-json", str(deep_file)),
        ("api", "-f", f"k:={DEEP}", "/v1/account"),
        ("files", "upload", str(deep_file), "--metadata", DEEP),
    ):
        result = invoke(*args)
        assert result.exit_code == 2, args
        assert "nested deeper than 100 levels" in _one_error_line(result.stderr), args


def test_a_header_with_a_carriage_return_is_refused(invoke: Invoke, server: ThreadedFake) -> None:
    before = server.call(lambda fake: fake.count())
    result = invoke("api", "-H", "X-A: a\rb", "/v1/account")
    assert result.exit_code == 2
    assert "the value of 'X-A' has a control character" in _one_error_line(result.stderr)
    assert server.call(lambda fake: fake.count()) == before  # nothing was sent


def test_a_file_that_cannot_be_written_is_one_line(invoke: Invoke) -> None:
    result = invoke("codegen", "fake/upper", "-o", "/no/such/dir/x.py")
    assert result.exit_code == 1
    assert result.stderr == "Error: /no/such/dir/x.py: No such file or directory\n"


def test_a_full_stdout_ends_cleanly(server: ThreadedFake) -> None:
    import subprocess

    from ._fakes import CONSOLE_SCRIPT, clean_env

    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [str(CONSOLE_SCRIPT), "models", "list"],
            stdout=full,
            stderr=subprocess.PIPE,
            env=clean_env(server.env),
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.decode() == "Error: cannot write the output: No space left on device\n"


def test_a_bug_is_one_line_and_debug_shows_the_traceback(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise ValueError("boom")

    monkeypatch.setattr(_output.Output, "one", broken)
    quiet = invoke("account")
    assert quiet.exit_code == 1
    assert quiet.stderr == (
        "Error: unexpected ValueError: boom (a bug? rerun with --debug for details)\n"
    )
    loud = invoke("--debug", "account")
    assert loud.exit_code == 1
    assert "Traceback (most recent call last)" in loud.stderr
    assert loud.stderr.splitlines()[-1] == (
        "Error: unexpected ValueError: boom — a bug in replicate-async; please report it "
        "to its maintainers with the traceback above and the command you ran"
    )


def test_a_failure_to_shape_the_output_still_prints_it(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object) -> None:
        raise RecursionError("too deep")

    monkeypatch.setattr("replicate_async.cli.run._shaped", broken)
    result = invoke("run", "meta/meta-llama-3-8b-instruct", "-i", "prompt=a b")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "a\n b\n"  # the tokens as the API sent them, one per line
    assert result.stderr == "(the output is shown as the API sent it)\n"
