"""Serve a fake from the command line (``python -m replicate_async.testing`` and
``replicate-async fake-server``): one flag per :class:`FakeOptions` field, generated."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ._options import FakeOptions, option_fields

__all__ = ["click_options", "main", "options_from", "serve"]

F = TypeVar("F", bound=Callable[..., Any])
_TYPES: dict[str, type] = {"int": int, "int | None": int, "float": float, "str": str}


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    models: int = 0,
    predictions: int = 0,
    stop: asyncio.Event | None = None,
    handle_signals: bool = True,
    announce: Callable[[str], None] | None = None,
    **options: Any,
) -> None:
    """Run a :class:`FakeReplicate` until ``stop`` is set, SIGINT/SIGTERM, or cancellation.

    ``models``/``predictions`` add that many synthetic items; ``options`` go to
    :class:`FakeReplicate`. The base URL and token are announced (printed by default)
    once the server listens.
    """
    from ._server import FakeReplicate

    stop = stop if stop is not None else asyncio.Event()
    say = announce if announce is not None else _print
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if handle_signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
    try:
        async with FakeReplicate(host=host, port=port, **options) as fake:
            if models:
                fake.add_models(models)
            if predictions:
                fake.add_predictions(predictions)
            say(f"Fake Replicate API listening on {fake.base_url}")
            say(f"REPLICATE_BASE_URL={fake.base_url}")
            say(f"REPLICATE_API_TOKEN={fake.token}")
            if fake.options.inspect_endpoint:
                say(f"Request log: {fake.origin}/_fake/requests")
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _print(line: str) -> None:
    print(line, flush=True)


def _flag(field: dataclasses.Field[Any]) -> str:
    flag: str | None = field.metadata.get("flag")
    return flag or "--" + field.name.replace("_", "-")


def _specs() -> list[tuple[str, str, dict[str, Any]]]:
    """``(flag, dest, spec)`` per option: ``spec`` has ``help`` and either ``flag_value``
    (a switch storing that value) or ``type``."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    for field in option_fields():
        help_text = str(field.metadata.get("flag_help", ""))
        if field.name == "seed":
            out.append(("--seed", "seed", {"type": int, "help": help_text}))
            out.append(("--no-seed", "no_seed", {"flag_value": True, "help": "start empty"}))
        elif field.type == "bool":
            out.append(
                (_flag(field), field.name, {"flag_value": not field.default, "help": help_text})
            )
        else:
            default = field.default
            text = f"{help_text} (default {default})" if default is not None else help_text
            out.append((_flag(field), field.name, {"type": _TYPES[str(field.type)], "help": text}))
    return out


def options_from(values: Mapping[str, Any]) -> dict[str, Any]:
    """:class:`FakeReplicate` keyword arguments from parsed flags (unset ones left out)."""
    options = {
        name: value
        for name, value in values.items()
        if value is not None and name in FakeOptions.__dataclass_fields__
    }
    if values.get("no_seed"):
        options["seed"] = False
    return options


def click_options(func: F) -> F:
    """Add every option's flag to a click command (``replicate-async fake-server``)."""
    import click  # the [cli] extra; only the command line needs it

    @functools.wraps(func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            FakeOptions(**options_from(kwargs))
        except (TypeError, ValueError) as exc:
            raise click.UsageError(str(exc)) from None
        return func(*args, **kwargs)

    wrapped: F = checked  # type: ignore[assignment]
    for flag, dest, spec in reversed(_specs()):
        if "flag_value" in spec:
            option = click.option(
                flag, dest, flag_value=spec["flag_value"], default=None, help=spec["help"]
            )
        else:
            option = click.option(flag, dest, type=spec["type"], default=None, help=spec["help"])
        wrapped = option(wrapped)
    return wrapped


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m replicate_async.testing",
        description="Serve a fake Replicate HTTP API on this machine until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument("--models", type=int, default=0, help="synthetic models to add")
    parser.add_argument("--predictions", type=int, default=0, help="synthetic predictions")
    for flag, dest, spec in _specs():
        if "flag_value" in spec:
            action = "store_true" if spec["flag_value"] else "store_false"
            parser.add_argument(flag, dest=dest, action=action, default=None, help=spec["help"])
        else:
            parser.add_argument(flag, dest=dest, type=spec["type"], help=spec["help"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = vars(_parser().parse_args(argv))
    options = options_from(args)
    try:
        FakeOptions(**options)
    except (TypeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    coro = serve(
        args["host"],
        args["port"],
        models=args["models"],
        predictions=args["predictions"],
        **options,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
