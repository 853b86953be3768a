"""The root ``replicate-async`` command: global options and the command tree."""

from __future__ import annotations

import click

from .. import __version__
from ._runtime import Settings
from .catalogue import account, collections, hardware
from .deployments import deployments
from .files import files
from .models import models
from .predictions import predictions
from .run import run
from .tools import demo, fake_server
from .trainings import trainings

__all__ = ["cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--base-url",
    envvar="REPLICATE_BASE_URL",
    metavar="URL",
    help="The API to talk to (env REPLICATE_BASE_URL; default https://api.replicate.com/v1).",
)
@click.option("--json", "json_", is_flag=True, help="Print JSON lines instead of tables.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help="At most N items per list (default: 50 in tables, all with --json; 0 for all).",
)
@click.version_option(__version__, prog_name="replicate-async")
@click.pass_context
def cli(ctx: click.Context, base_url: str | None, json_: bool, limit: int | None) -> None:
    """An asyncio client for Replicate's API, on the command line.

    The token is read from REPLICATE_API_TOKEN (never from an option, so it stays out of
    your shell history). Try `replicate-async demo`: no token or network needed.
    """
    source = ctx.get_parameter_source("base_url")
    ctx.obj = Settings(
        base_url=base_url or None,
        json=json_,
        limit=limit,
        base_url_from_command_line=source == click.core.ParameterSource.COMMANDLINE,
    )


for command in (
    models,
    predictions,
    run,
    trainings,
    collections,
    hardware,
    deployments,
    files,
    account,
    demo,
    fake_server,
):
    cli.add_command(command)
