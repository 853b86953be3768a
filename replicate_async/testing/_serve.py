"""Serve a fake from the command line (``python -m replicate_async.testing``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ._server import FakeReplicate

__all__ = ["main", "serve"]


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
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def _print(line: str) -> None:
    print(line, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m replicate_async.testing",
        description="Serve a fake Replicate HTTP API on this machine until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    parser.add_argument("--models", type=int, default=0, help="synthetic models to add")
    parser.add_argument("--predictions", type=int, default=0, help="synthetic predictions")
    parser.add_argument("--page-size", type=int, default=100, help="items per page")
    parser.add_argument("--default-duration", type=float, default=0.0, help="run seconds")
    parser.add_argument("--slow-duration", type=float, default=5.0, help="fake/slow seconds")
    parser.add_argument("--rate-limits", action="store_true", help="enforce rate limits")
    parser.add_argument("--no-auth", action="store_true", help="accept requests without a token")
    parser.add_argument("--no-seed", action="store_true", help="start empty")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    coro = serve(
        args.host,
        args.port,
        models=args.models,
        predictions=args.predictions,
        page_size=args.page_size,
        default_duration=args.default_duration,
        slow_duration=args.slow_duration,
        rate_limits_enabled=args.rate_limits,
        require_auth=not args.no_auth,
        seed=not args.no_seed,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(coro)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
