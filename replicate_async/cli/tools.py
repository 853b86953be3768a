"""``demo`` and ``fake-server``: no account needed."""

from __future__ import annotations

from typing import Any

import click

from ..testing._serve import click_options, options_from
from ._params import MODEL_REF
from ._runtime import CLIError, Settings, run_coroutine

__all__ = ["demo", "fake_server"]


@click.command()
@click.option(
    "--base-url",
    metavar="URL",
    help="Run against this API instead of an in-process fake (needs REPLICATE_API_TOKEN).",
)
@click.option("--model", type=MODEL_REF, help="With --base-url: the text model every step runs.")
@click.option(
    "--count",
    type=click.IntRange(min=1),
    help="Predictions in the fan-out step (default 300 on the fake, 3 elsewhere).",
)
@click.option("--concurrency", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="Only step results and the summary.")
@click.pass_context
def demo(
    ctx: click.Context,
    base_url: str | None,
    model: str | None,
    count: int | None,
    concurrency: int,
    quiet: bool,
) -> None:
    """Show the SDK at work against a fake API started in-process (about 10 s).

    Lazy pagination, Prefer: wait, token streaming, a 300-prediction fan-out with
    injected faults, a deadline that cancels on the server, and a summary.
    """
    from .demo import run_demo

    settings = ctx.find_object(Settings)
    if base_url is None and settings is not None and settings.base_url_from_command_line:
        base_url = settings.base_url
    if base_url is not None and model is None:
        raise click.UsageError("--model is required with --base-url (a text model)")
    main = run_demo(
        base_url=base_url,
        model=model,
        count=count,
        concurrency=concurrency,
        quiet=quiet,
    )
    run_coroutine(main, interrupted="Interrupted: in-flight predictions were canceled.")


@click.command("fake-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Default: a free port.")
@click.option("--models", type=click.IntRange(min=0), default=0, help="Synthetic models to add.")
@click.option(
    "--predictions", type=click.IntRange(min=0), default=0, help="Synthetic predictions to add."
)
@click_options  # one flag per FakeOptions field (the fake declares them)
def fake_server(
    host: str,
    port: int,
    models: int,
    predictions: int,
    **flags: Any,
) -> None:
    """Serve a fake Replicate API for your tests and experiments, until Ctrl-C.

    It prints the two environment variables that point the SDK (and this command line)
    at it. Models: fake/echo, fake/upper, fake/tokens, fake/image, fake/fail, fake/slow...
    """
    from ..testing._serve import serve

    def announce(line: str) -> None:
        name, sep, value = line.partition("=")
        if sep and name.startswith("REPLICATE_"):
            line = f"export {name}={value}"
        click.echo(line)

    options = options_from(flags)
    main = serve(host, port, models=models, predictions=predictions, announce=announce, **options)
    try:
        run_coroutine(main, interrupted="Stopped.")
    except OSError as exc:
        raise CLIError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
