"""The root ``replicate-async`` command: global options and the (lazily loaded) command tree.

Commands live in their own modules and are imported only when they run (or when their
own ``--help`` is asked for), so ``replicate-async --help`` and ``--version`` start without
loading aiohttp or rich. To add a command, add one line to :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from .. import __version__
from ._params import set_jq
from ._runtime import Settings

__all__ = ["COMMANDS", "cli"]

#: ``name: (module in this package, attribute, one-line help shown by --help)``.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("run", "run", "Run a model and print its output."),
    "models": ("models", "models", "Browse and search the model catalogue."),
    "predictions": (
        "predictions",
        "predictions",
        "Create, inspect, follow and cancel predictions.",
    ),
    "trainings": ("trainings", "trainings", "Fine-tune a model version into a model of your own."),
    "deployments": ("deployments", "deployments", "Fixed model versions on dedicated hardware."),
    "files": ("files", "files", "Upload files once and pass their URL to models."),
    "collections": ("catalogue", "collections", "Curated collections of models."),
    "hardware": ("catalogue", "hardware", "Hardware that models and deployments run on."),
    "account": ("catalogue", "account", "Show the account that owns REPLICATE_API_TOKEN."),
    "auth": ("auth", "auth", "Check the token: which account, which API."),
    "api": ("api", "api", "Send a raw request to any API path (like `gh api`)."),
    "demo": ("tools", "demo", "Show the SDK at work against an in-process fake (no token)."),
    "fake-server": ("tools", "fake_server", "Serve a fake Replicate API until Ctrl-C."),
    "codegen": ("codegen", "codegen", "Write a typed Python module for a model's inputs."),
    "batch": ("batch", "batch", "Run a model over many inputs, durably (resumable, never twice)."),
}


#: What click shows and exits with by itself (the boundary lets these through).
_CLICK_OWN = (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (see :data:`COMMANDS`), and
    the error boundary around everything they do (see :mod:`._boundary`)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        """Parse the global options, inside the error boundary."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _CLICK_OWN:
            raise
        except (Exception, KeyboardInterrupt) as exc:
            from ._boundary import translate, wants_debug

            raise translate(exc, wants_debug(args)) from None

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, inside the error boundary."""
        try:
            return super().invoke(ctx)
        except _CLICK_OWN:
            raise
        except (Exception, KeyboardInterrupt) as exc:
            from ._boundary import translate

            raise translate(exc, ctx.ensure_object(Settings).verbosity > 1) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, in the table's order."""
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Import the command's module now."""
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(f".{spec[0]}", __package__)
        command: click.Command = getattr(module, spec[1])
        return command

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The epilog's paragraphs wrapped at the terminal's width, only between words
        (click would also break ``replicate-async`` at its hyphen)."""
        import textwrap

        if not self.epilog:
            return
        indent = " " * (formatter.current_indent + 2)
        width = max(formatter.width, 20)
        for paragraph in self.epilog.split("\n\n"):
            formatter.write_paragraph()
            lines = textwrap.wrap(
                " ".join(paragraph.split()),
                width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
                break_long_words=False,
            )
            formatter.write("\n".join(lines) + "\n")

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their table help, without importing them."""
        rows = [(name, spec[2]) for name, spec in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


#: Paragraphs that click wraps at the terminal's width (never mid-word).
EPILOG = """Output: tables on a terminal; tab-separated lines (no header) in a pipe; --json prints
the API's objects, one per line; --jq '.id' picks fields.

Exit status: 0 ok; 1 the API or the model failed; 2 bad usage (a bad option or input, found
before anything was sent, or a --jq filter that does not fit the answer); 3 stopped waiting
while the prediction may still be running (its id is printed); 130 interrupted (Ctrl-C).

Shell completion: eval "$(_REPLICATE_ASYNC_COMPLETE=bash_source replicate-async)"
(zsh_source, fish_source for the other shells)."""


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EPILOG,
)
@click.option(
    "--base-url",
    envvar="REPLICATE_BASE_URL",
    metavar="URL",
    help="The API to talk to (env REPLICATE_BASE_URL; default https://api.replicate.com/v1).",
)
@click.option("--json", "json_", is_flag=True, help="Print JSON lines instead of tables.")
@click.option(
    "--jq",
    metavar="EXPR",
    expose_value=False,
    callback=set_jq,
    help="Print only part of each JSON object: .id, .urls.web, .output[0], .[] (implies --json).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help="At most N items per list (default: 50, or all with --json; 0 for all).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Give up after this long (a run is then canceled on the server).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show each HTTP request and its status.")
@click.option("--debug", is_flag=True, help="Also show headers and bodies (token redacted).")
@click.version_option(__version__, prog_name="replicate-async")
@click.pass_context
def cli(
    ctx: click.Context,
    base_url: str | None,
    json_: bool,
    limit: int | None,
    timeout: float | None,
    verbose: bool,
    debug: bool,
) -> None:
    """An asyncio client for Replicate's API, on the command line.

    The token is read from REPLICATE_API_TOKEN (never from an option, so it stays out of
    your shell history). Try `replicate-async demo`: no token or network needed.
    """
    source = ctx.get_parameter_source("base_url")
    settings = ctx.ensure_object(Settings)
    settings.base_url = base_url or None
    settings.base_url_from_command_line = source == click.core.ParameterSource.COMMANDLINE
    settings.json = settings.json or json_
    settings.limit = limit
    settings.timeout = timeout
    settings.verbosity = 2 if debug else 1 if verbose else 0
