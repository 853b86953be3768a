"""Inputs from every source are merged, then checked once against the model's schema
before anything is sent; messages name the object that is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ._fakes import ThreadedFake
from ._term import piped
from .conftest import Invoke

LLAMA = "meta/meta-llama-3-8b-instruct"
SDXL_LATEST = "39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b"


def _posts(server: ThreadedFake) -> int:
    return server.call(lambda fake: fake.count("POST"))


def test_a_mistyped_input_name_is_refused_with_did_you_mean(
    invoke: Invoke, server: ThreadedFake
) -> None:
    before = _posts(server)
    result = invoke("run", LLAMA, "-i", "prompt=hi", "-i", "max_token=3")
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: the model has no input 'max_token' (did you mean 'max_tokens'?); its "
        "inputs are: prompt, max_tokens, temperature, system_prompt\n"
    )
    created = invoke("predictions", "create", LLAMA, "--input-json", "-",
                     input='{"prompt": "hi", "max_token": 3}')  # fmt: skip
    assert created.exit_code == 2
    assert "did you mean 'max_tokens'?" in created.stderr
    assert _posts(server) == before  # nothing was sent


def test_every_source_is_checked_against_the_schema(
    invoke: Invoke, server: ThreadedFake, tmp_path: Path
) -> None:
    before = _posts(server)
    inputs = tmp_path / "inputs.json"
    inputs.write_text('{"text": 5}')
    wrong_type = "input.text: Invalid type. Expected: string, given: integer"
    from_file = invoke("run", "fake/upper", "--input-json", str(inputs))
    assert (from_file.exit_code, wrong_type in from_file.stderr) == (2, True)
    as_json = invoke("run", "fake/upper", "-i", "text:=5")
    assert (as_json.exit_code, wrong_type in as_json.stderr) == (2, True)
    nothing = invoke("predictions", "create", "fake/upper")
    assert nothing.exit_code == 2
    assert nothing.stderr.endswith("input: text is required\n")
    overridden = invoke("--json", "run", "fake/upper", "--input-json", str(inputs), "-i", "text=x")
    assert (overridden.exit_code, json.loads(overridden.stdout)) == (0, "X")  # -i wins
    assert _posts(server) == before + 1


def test_at_file_is_text_for_a_string_input_whether_a_path_or_stdin(
    invoke: Invoke, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("dear diary\n")
    by_path = invoke("--json", "run", "fake/upper", "-i", f"text=@{notes}")
    by_stdin = invoke("--json", "run", "fake/upper", "-i", "text=@-", input="dear diary\n")
    assert json.loads(by_path.stdout) == json.loads(by_stdin.stdout) == "DEAR DIARY\n"
    binary = tmp_path / "x.bin"
    binary.write_bytes(b"\xff\xfe")
    refused = invoke("run", "fake/upper", "-i", f"text=@{binary}")
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"Error: -i text: the input 'text' takes text, and {binary} is not UTF-8 text\n"
    )


def test_at_file_is_a_file_for_a_uri_input(invoke: Invoke, server: ThreadedFake) -> None:
    result = invoke(
        "predictions", "create", f"stability-ai/sdxl:{SDXL_LATEST}", "-i", "prompt=cat",
        "-i", "image=@-", "--json", input="pixels",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    sent = json.loads(result.stdout)["input"]
    assert sent == {"prompt": "cat", "image": "data:application/octet-stream;base64,cGl4ZWxz"}


def test_a_non_official_model_without_a_version_says_so_before_uploading(
    server: ThreadedFake, tmp_path: Path
) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + b"\0" * 3_000_000)
    before = _posts(server)
    result = piped(server.env, "run", "stability-ai/sdxl", "-i", "prompt=x", "-i", f"image=@{big}")
    assert result.returncode == 2
    assert result.stderr == (
        "Error: stability-ai/sdxl is not an official model, so it runs only at a given "
        f"version: e.g. stability-ai/sdxl:{SDXL_LATEST} (its latest)\n"
    )
    assert _posts(server) == before  # no upload, no prediction


def test_a_missing_destination_is_named_as_the_destination(
    invoke: Invoke, server: ThreadedFake
) -> None:
    before = _posts(server)
    result = invoke(
        "trainings", "create", f"stability-ai/sdxl:{SDXL_LATEST}", "--destination", "alice/missing"
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: 404 Not Found: the destination model alice/missing was not found; create it "
        "first (https://replicate.com/create), then train into it\n"
    )
    assert _posts(server) == before
    missing_version = invoke(
        "trainings", "create", "stability-ai/sdxl:" + "0" * 64, "--destination", "alice/my-model"
    )
    assert missing_version.exit_code == 1
    assert "version 0000000000000000" in missing_version.stderr


_HOSTILE_INPUTS = {
    "required is a number": {"type": "object", "required": 5, "properties": {"text": {}}},
    "properties is a list": {"type": "object", "properties": [1]},
    "a property refers to itself": {
        "type": "object",
        "properties": {"text": {"$ref": "#/components/schemas/Input/properties/text"}},
    },
    "mixed x-order types": {
        "type": "object",
        "properties": {"a": {"x-order": "1"}, "b": {"x-order": 0}, "text": {"type": "string"}},
    },
}


@pytest.mark.parametrize("name", list(_HOSTILE_INPUTS))
def test_a_malformed_input_schema_never_crashes_the_input_view_or_the_check(name: str) -> None:
    """``models get``'s input table and ``run``'s merge-then-check read the schema with
    the SDK's budgeted walkers: a malformed schema describes fewer inputs, never raises."""
    from replicate_async.cli._formats import input_specs
    from replicate_async.cli._inputs import Text, resolve_inputs
    from replicate_async.models import Version

    document = {"components": {"schemas": {"Input": _HOSTILE_INPUTS[name]}}}
    specs = input_specs(Version(id="v" * 64, openapi_schema=document))
    assert all(spec.name in ("a", "b", "text") for spec in specs)
    resolved = resolve_inputs({"text": Text("hi")}, document)
    assert resolved == {"text": "hi"}
