"""``replicate-async codegen``: typed modules that pass mypy --strict and ruff, and run."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from replicate_async import InputValidationError
from replicate_async._workflows.codegen import generate_module, python_name
from replicate_async.testing import FakeReplicate
from tests.unit.test_schema import RECORDED, SEED

from .conftest import Invoke

ROOT = Path(__file__).resolve().parents[2]
#: Every model the fake serves that has a version (so a schema).
SERVED = [
    f"{m['owner']}/{m['name']}"
    for m in json.loads(SEED.read_text())["models"]
    if m["versions"] and m["visibility"] == "public"
]

#: Names, texts and types that are awkward to turn into Python.
TRICKY: dict[str, Any] = {
    "openapi": "3.0.2",
    "components": {
        "schemas": {
            "Input": {
                "type": "object",
                "required": ["class", "images"],
                "properties": {
                    "class": {"type": "string", "description": 'A keyword; "quoted" \\ text'},
                    "max-size": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "Caf\u00e9 \u2013 ok",
                    },
                    "images": {"type": "array", "items": {"type": "string", "format": "uri"}},
                    "mode": {"allOf": [{"$ref": "#/components/schemas/mode"}], "default": 2},
                    "tags": {"type": "array", "items": {"$ref": "#/components/schemas/tag"}},
                    "options": {"type": "object", "description": '"""triple""" quotes'},
                    "anything": {"description": 'no type at all; ends with a quote"'},
                },
            },
            "mode": {"enum": [1, 2, 3], "type": "integer"},
            "tag": {"enum": ["a b", "Any", 'c"d'], "type": "string"},
            "Output": {"type": "object", "properties": {"x": {"type": "number"}}},
        }
    },
}


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_python_names() -> None:
    assert python_name("meta-llama-3-8b-instruct") == "meta_llama_3_8b_instruct"
    assert python_name("3d-model") == "model_3d_model"
    assert python_name("class") == "class_"
    assert python_name("--") == "model"


def test_codegen_prints_a_typed_module(invoke: Invoke) -> None:
    result = invoke("codegen", "fake/tokens")
    assert result.exit_code == 0, result.stderr
    code = result.stdout
    assert code.startswith('"""Typed inputs and an async function for the Replicate model')
    assert 'MODEL = "fake/tokens"' in code
    assert "class TokensInput(TypedDict, total=False):" in code
    assert "    prompt: Required[str]\n" in code
    assert "    max_tokens: NotRequired[int]\n" in code
    assert (
        '    """Maximum number of tokens to generate. Between 1 and 4096. Default: 128."""' in code
    )
    # An iterator of strings shown concatenated: the function returns one text.
    assert (
        "async def tokens(client: AsyncReplicate, /, **input: Unpack[TokensInput]) -> str:" in code
    )
    image = invoke("codegen", "fake/image").stdout
    assert 'ImageScheduler = Literal[\n    "DDIM",\n    "K_EULER",\n    "PNDM",\n]' in image
    assert "-> list[str]:" in image


def test_codegen_names_and_errors(invoke: Invoke) -> None:
    named = invoke("codegen", "fake/echo", "--name", "echo_it")
    assert named.exit_code == 0, named.stderr
    assert "async def echo_it(client: AsyncReplicate, /, **input: Unpack[EchoItInput]) -> Any:" in (
        named.stdout
    )
    missing = invoke("codegen", "nobody/nothing")
    assert missing.exit_code == 1
    assert "404" in missing.stderr
    bare = invoke("codegen", "a" * 64)  # a version id alone: no model to read the schema of
    assert bare.exit_code == 2
    assert "owner/name" in bare.stderr


def test_generated_modules_pass_mypy_strict_and_ruff(invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "generated"
    out.mkdir()
    for ref in SERVED:  # through the command line, against the fake
        result = invoke("codegen", ref, "-o", str(out / f"{python_name(ref)}.py"))
        assert result.exit_code == 0, result.stderr
        assert "wrote" in result.stderr
    for key, schema in RECORDED.items():
        ref = key.partition(":")[2] or "stability-ai/sdxl"
        (out / f"recorded_{python_name(key)}.py").write_text(generate_module(ref, schema))
    pinned = "stability-ai/sdxl:" + "0" * 64
    (out / "pinned.py").write_text(generate_module(pinned, RECORDED["version-get-sdxl"]))
    (out / "tricky.py").write_text(generate_module("someone/tricky-model", TRICKY))
    # No schema at all; and names that would clash with the module's own.
    (out / "empty.py").write_text(generate_module("someone/empty", {}))
    clash = {"components": {"schemas": {"Input": {"properties": {"input": {"enum": ["a"]}}}}}}
    (out / "clash.py").write_text(generate_module("someone/cast", clash))
    assert len(list(out.glob("*.py"))) == len(SERVED) + len(RECORDED) + 4
    config = str(ROOT / "pyproject.toml")
    ruff = [sys.executable, "-m", "ruff"]
    for command in (
        [*ruff, "check", "--config", config, "--no-cache", str(out)],
        [*ruff, "format", "--config", config, "--no-cache", "--check", str(out)],
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "mypy"), str(out)],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    tricky = _load(out / "tricky.py")
    assert tricky.TrickyModelInput.__required_keys__ == {"class", "images"}
    assert "max-size" in tricky.TrickyModelInput.__optional_keys__


async def test_a_generated_function_runs_the_model(
    replicate_fake: FakeReplicate, tmp_path: Path
) -> None:
    async with replicate_fake.client() as client:
        schema = await client.use("fake/image").schema()
        path = tmp_path / "image_model.py"
        path.write_text(
            generate_module("fake/image", schema.openapi_schema, version=schema.version)
        )
        module = _load(path)
        replicate_fake.clear_requests()
        first = await module.image(client, prompt="a cat", num_outputs=2)
        second = await module.image(client, prompt="a dog")
        assert len(first) == 2
        assert len(second) == 1
        async with replicate_fake.client() as another:  # the module's schema serves every client
            assert len(await module.image(another, prompt="a bird")) == 1
        assert replicate_fake.count("GET", "/v1/models/fake/image") == 1
        assert module.SCHEMA.value is not None
        replicate_fake.clear_requests()
        with pytest.raises(InputValidationError) as caught:
            await module.image(client, prompt="x", width=1, scheduler="FAST")
        assert [p.name for p in caught.value.problems] == ["width", "scheduler"]
        assert replicate_fake.count() == 0
