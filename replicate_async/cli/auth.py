"""``auth status``: which account the token belongs to, on which API."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from ._params import json_option
from ._runtime import CLIError, with_client

if TYPE_CHECKING:
    from .. import AsyncReplicate
    from ._output import Output

__all__ = ["auth"]


@click.group()
def auth() -> None:
    """The API token: where it comes from and whom it belongs to."""


def _masked(token: str) -> str:
    """``r8_…, 40 characters``: enough to recognise a token, never enough to use it."""
    return f"{token[:3]}…, {len(token)} characters"


@auth.command("status")
@json_option
@with_client
async def status(client: AsyncReplicate, out: Output) -> None:
    """Check REPLICATE_API_TOKEN against the API; exit 1 if it is missing or refused."""
    from ..exceptions import AuthenticationError

    token = os.environ.get("REPLICATE_API_TOKEN") or ""
    if not token:
        raise CLIError("not logged in: set REPLICATE_API_TOKEN (find it at replicate.com/account)")
    try:
        account = await client.account.get()
    except AuthenticationError:
        raise CLIError(
            f"the token in REPLICATE_API_TOKEN ({_masked(token)}) was refused by {client.base_url}"
        ) from None
    if out.json:
        out.emit_json({"api": client.base_url, "username": account.username, "type": account.type})
        return
    out.write(
        f"Logged in to {client.base_url} as {account.username} ({account.type})\n"
        f"Token: REPLICATE_API_TOKEN ({_masked(token)})\n"
    )
