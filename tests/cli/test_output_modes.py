"""Output as people and programs see it: the console script on a pseudo-terminal and in a
pipe, asserting the text, the exit status and what the fake API received."""

from __future__ import annotations

import json
import subprocess

from ._fakes import CONSOLE_SCRIPT, ThreadedFake, clean_env
from ._term import on_terminal, piped

BOX = set("┏┓┗┛┃━│─┡┩╇┳┻└┘┌┐")


def test_a_list_in_a_pipe_is_plain_tab_separated_lines(server: ThreadedFake) -> None:
    result = piped(server.env, "predictions", "list", "--limit", "0")
    assert result.returncode == 0
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(rows) >= 2
    assert all(len(row) == 5 for row in rows)
    assert not BOX & set(result.stdout)
    # No padding: an empty last field (no predict time yet) is an empty field, not spaces.
    assert all(not line.endswith(" ") and "  " not in line for line in result.stdout.splitlines())
    ids = [row[0] for row in rows]
    assert all(len(i) >= 20 and "…" not in i for i in ids)  # whole ids, never cut
    created = rows[0][3]
    assert created.endswith("Z")
    assert "T" in created
    assert result.stderr == ""  # quiet success
    capped = piped(server.env, "models", "list", "--limit", "3")
    assert len(capped.stdout.splitlines()) == 3
    assert capped.stderr == "showing the first 3; use --limit N (0 for all)\n"


def test_a_list_on_a_terminal_is_a_table_with_whole_ids_at_60_columns(
    server: ThreadedFake,
) -> None:
    piped_ids = piped(server.env, "--jq", ".id", "predictions", "list", "--limit", "3")
    ids = piped_ids.stdout.split()
    code, text = on_terminal(
        {**server.env, "TZ": "Asia/Kolkata"}, "predictions", "list", "--limit", "3", columns=60
    )
    assert code == 0
    assert "┏" in text
    assert "│" in text
    assert all(i in text for i in ids)  # the id column never gives way
    wide_code, wide = on_terminal(
        {**server.env, "TZ": "Asia/Kolkata"}, "predictions", "list", "--limit", "3", columns=120
    )
    assert wide_code == 0
    assert "created (IST)" in wide  # local time, labelled with its zone


def test_json_lines_are_the_api_objects_and_jq_picks_fields(server: ThreadedFake) -> None:
    listed = piped(server.env, "--json", "models", "list", "--limit", "2")
    models = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(models) == 2
    assert {"owner", "name", "latest_version"} <= set(models[0])
    names = piped(server.env, "models", "list", "--limit", "2", "--jq", ".owner,.name")
    assert names.stdout.splitlines() == [value for m in models for value in (m["owner"], m["name"])]
    bad = piped(server.env, "--jq", "owner", "models", "list")
    assert bad.returncode == 2
    assert "a filter starts with '.'" in bad.stderr


def test_json_into_head_exits_0_under_pipefail(server: ThreadedFake) -> None:
    before = server.call(lambda fake: fake.count("GET", "/v1/models"))
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"'{CONSOLE_SCRIPT}' --json models list | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(server.env),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 1
    assert json.loads(result.stdout)["owner"]
    # It stopped at the closed pipe instead of reading the whole catalogue.
    assert server.call(lambda fake: fake.count("GET", "/v1/models")) - before <= 2


def test_models_get_lists_inputs_with_types_defaults_and_required(server: ThreadedFake) -> None:
    result = piped(server.env, "models", "get", "fake/tokens")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "model\tfake/tokens" in lines
    prompt = "Text to generate from; the fake streams it back token by token"
    assert f"prompt\tstring\t\ttrue\t{prompt}" in lines
    assert "max_tokens\tinteger 1..4096\t128\tfalse\tMaximum number of tokens to generate" in lines
    code, text = on_terminal(server.env, "models", "get", "fake/tokens", columns=120)
    assert code == 0
    assert "created         2025-01-02 10:01:30 UTC" in text
    assert "│ max_tokens    │ integer 1..4096 │ 128" in text


def test_numbers_are_grouped_for_people_only(server: ThreadedFake, tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "big.txt"
    path.write_bytes(b"x" * 12345)
    uploaded = piped(server.env, "--jq", ".id", "files", "upload", str(path))
    file_id = uploaded.stdout.strip()
    assert piped(server.env, "files", "get", file_id).stdout.count("size\t12345\n") == 1
    code, text = on_terminal(server.env, "files", "get", file_id)
    assert code == 0
    assert "12,345" in text


def test_inputs_key_text_is_a_string_and_key_colon_equals_is_json(server: ThreadedFake) -> None:
    result = piped(
        server.env, "--json", "run", "fake/echo",
        "-i", "text=1984", "-i", "title=[cinematic] a lighthouse", "-i", 'q="42"',
        "-i", "n:=42", "-i", "tags:=[\"a\"]",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = {
        "text": "1984",
        "title": "[cinematic] a lighthouse",
        "q": '"42"',
        "n": 42,
        "tags": ["a"],
    }
    assert json.loads(result.stdout) == expected
    sent = server.call(
        lambda fake: fake.requests_matching("POST", "/v1/models/fake/echo/predictions")[-1]
    )
    assert json.loads(sent.body)["input"] == expected


def test_inputs_are_typed_by_the_schema_and_come_from_files_and_stdin(
    server: ThreadedFake, tmp_path: object
) -> None:
    from pathlib import Path

    doc = Path(str(tmp_path)) / "inputs.json"
    doc.write_text(json.dumps({"prompt": "from the file", "temperature": 0.1}))
    result = piped(
        server.env, "run", "fake/tokens", "--input-json", str(doc),
        "-i", "max_tokens=2", "-i", "system_prompt=@-", input=b"be brief",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from the\n"  # a language model's tokens, joined into text
    sent = server.call(
        lambda fake: fake.requests_matching("POST", "/v1/models/fake/tokens/predictions")[-1]
    )
    assert json.loads(sent.body)["input"] == {
        "prompt": "from the file",
        "temperature": 0.1,
        "max_tokens": 2,
        "system_prompt": "be brief",
    }


def test_a_422_is_one_line_that_does_not_repeat_itself(server: ThreadedFake) -> None:
    # A bare version id has no schema to check against locally: the server answers 422.
    version = piped(server.env, "models", "versions", "fake/image", "--jq", ".id").stdout
    result = piped(server.env, "run", version.split()[0])
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: 422 ")
    assert line.count("prompt") == 1


def test_inputs_that_break_the_schema_are_refused_before_anything_is_sent(
    server: ThreadedFake,
) -> None:
    path = "/v1/models/fake/tokens/predictions"
    before = server.call(lambda fake: fake.count("POST", path))
    result = piped(server.env, "run", "fake/tokens", "-i", "prompt=x", "-i", "max_tokens=lots")
    assert result.returncode == 2
    assert result.stderr.startswith("Error: the inputs do not fit the model's schema: ")
    assert "max_tokens" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert server.call(lambda fake: fake.count("POST", path)) == before
