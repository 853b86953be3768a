"""The package's shape: every module has a place in the layers, and imports point one way.

These read the source (no imports run), so a type-only or function-level import counts too.
Sizes are not checked here: a long module or function is a signal for review, not a rule
(CONTRIBUTING.md), and splitting code to get under a number hides its concepts.
"""

from __future__ import annotations

from tests.architecture import _imports

#: Lower layers first; a module may import only from its own layer or the ones before it.
#: (cli, testing and redis sit on top of everything and are checked separately.)
LAYERS: list[tuple[str, ...]] = [
    # 0. values: models, errors, configuration, time, pure rules
    (
        "replicate_async._version",
        "replicate_async._clock",
        "replicate_async._literals",
        "replicate_async.models",
        "replicate_async.exceptions",
        "replicate_async._config",
        "replicate_async._datauri",
        "replicate_async._pattern",
        "replicate_async._walk",
    ),
    # 1. the converter and what only needs it
    (
        "replicate_async._converter",
        "replicate_async._check_url",
        "replicate_async._check_numbers",
        "replicate_async._check_config",
        "replicate_async._check_body",
        "replicate_async._schema",
        "replicate_async._sse",
        "replicate_async.webhooks",
    ),
    # 2. the http core: one send, retries, throttle, options, hooks
    (
        "replicate_async._http",
        "replicate_async._retry",
        "replicate_async._throttle",
        "replicate_async._errors",
        "replicate_async._response",
        "replicate_async._session",
        "replicate_async._options",
        "replicate_async._hooks",
        "replicate_async._raw",
        "replicate_async._logging",
        "replicate_async._streaming",
        "replicate_async._tracing",
        "replicate_async._proxy",
    ),
    # 3. typed operations
    (
        "replicate_async.pagination",
        "replicate_async._sse_reader",
        "replicate_async.resources",
        "replicate_async._endpoint",
    ),
    # 4. workflows: drive/run/run_many/stream/files/webhook waiting/use()
    (
        "replicate_async._drive",
        "replicate_async._run",
        "replicate_async._run_many",
        "replicate_async._stream",
        "replicate_async._file_inputs",
        "replicate_async._file_outputs",
        "replicate_async._inflight",
        "replicate_async._bus",
        "replicate_async._webhook_wait",
        "replicate_async._use",
        "replicate_async._codegen",
        "replicate_async._namespaces",
        "replicate_async.asgi",
        "replicate_async.batch",
    ),
    # 5. the client (composition) and the package's public face
    ("replicate_async._client", "replicate_async.__init__"),
]
#: Modules that must never import these (e.g. the SDK core never imports the CLI or the fake).
FORBIDDEN = {
    "replicate_async.resources": (
        "replicate_async._run",
        "replicate_async._file_inputs",
        "replicate_async._file_outputs",
    ),
}
TOP = ("replicate_async.cli", "replicate_async.testing", "replicate_async.redis")


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _layer_of(name: str) -> int | None:
    if name == "replicate_async":
        name = "replicate_async.__init__"
    for number, members in enumerate(LAYERS):
        if any(_under(name, member) for member in members):
            return number
    return None


def test_no_import_cycles() -> None:
    assert _imports.cycles(_imports.graph()) == []


def test_imports_point_down() -> None:
    wrong = []
    for module, targets in _imports.graph().items():
        mine = _layer_of(module)
        for target in targets:
            theirs = _layer_of(target)
            if mine is not None and (theirs is None or theirs > mine):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_the_sdk_core_never_imports_the_layers_on_top() -> None:
    wrong = [
        f"{module} -> {target}"
        for module, targets in _imports.graph().items()
        if not any(_under(module, top) for top in TOP) and module != "replicate_async.__main__"
        for target in targets
        if any(_under(target, top) for top in TOP)
    ]
    assert wrong == []


def test_resources_do_only_typed_operations() -> None:
    wrong = [
        f"{module} -> {target}"
        for module, targets in _imports.graph().items()
        for prefix, banned in FORBIDDEN.items()
        if _under(module, prefix)
        for target in targets
        if target in banned
    ]
    assert wrong == []


def test_every_module_has_a_place() -> None:
    """A new module is placed in a layer (or under cli/testing/redis) before it can land."""
    homeless = [
        name
        for name in _imports.modules()
        if name not in ("replicate_async.__main__",)
        and _layer_of(name) is None
        and not any(_under(name, top) for top in TOP)
    ]
    assert homeless == []


def test_every_public_name_is_documented() -> None:
    import replicate_async

    undocumented = [
        name
        for name in replicate_async.__all__
        if not isinstance(getattr(replicate_async, name), str | int | float | tuple | dict)
        and not (getattr(replicate_async, name).__doc__ or "").strip()
    ]
    assert undocumented == []
