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
    # 0. values: models, errors, configuration, time
    (
        "replicate_async._version",
        "replicate_async._clock",
        "replicate_async._literals",
        "replicate_async.models",
        "replicate_async.exceptions",
        "replicate_async._config",
    ),
    # 1. the one converter, the rules for what callers and models hand us, webhook signatures
    ("replicate_async._converter", "replicate_async._checks", "replicate_async.webhooks"),
    # 2. the request path: one send, retries, throttle, errors, options, the SSE transport
    ("replicate_async._core",),
    # 3. typed operations
    ("replicate_async.pagination", "replicate_async.resources"),
    # 4. workflows: run/wait/stream/fan-out, files, webhook waits, use(), durable batches
    ("replicate_async._workflows", "replicate_async.asgi", "replicate_async.batch"),
    # 5. the client (composition), what drives a client it is given (the webhook waiter),
    # and the package's public face
    ("replicate_async._client", "replicate_async._waiter", "replicate_async.__init__"),
]
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
