"""``api PATH``: a raw request to any API path, for what no command covers (like ``gh api``).

The token is sent only to the configured API host: a full URL elsewhere goes without it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from ._params import json_option, load_json
from ._runtime import CLIError, with_client

if TYPE_CHECKING:
    from .. import AsyncReplicate
    from ._output import Output

__all__ = ["api", "api_path"]

_METHODS = click.Choice(
    ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "QUERY"], case_sensitive=False
)


def api_path(path: str, base_url: str) -> str:
    """``/v1/predictions`` or ``predictions`` -> ``predictions`` (relative to the base URL);
    full URLs stay as they are."""
    if path.startswith(("https://", "http://")):
        return path
    relative = path.lstrip("/")
    base_path = urlsplit(base_url).path.strip("/")
    if base_path and relative.startswith(base_path + "/"):
        relative = relative[len(base_path) + 1 :]
    return relative


def _fields(pairs: tuple[str, ...]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for pair in pairs:
        match = re.match(r"([^=:]+)(:=|=)", pair)
        if match is None:
            raise click.BadParameter(f"{pair!r} is not key=text or key:=json", param_hint="'-f'")
        key, value = match.group(1), pair[match.end() :]
        if match.group(2) == ":=":
            try:
                body[key] = load_json(value)
            except ValueError as exc:
                raise click.BadParameter(
                    f"{value[:40]!r} is not JSON: {exc}", param_hint="'-f'"
                ) from None
        else:
            body[key] = value
    return body


#: A header name (RFC 9110 token) and a value without control characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")


def _headers(lines: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not _HEADER_NAME.fullmatch(name.strip()):
            raise click.BadParameter(f"{line[:60]!r} is not 'Name: value'", param_hint="'-H'")
        if not _HEADER_VALUE.fullmatch(value):
            raise click.BadParameter(
                f"the value of {name.strip()!r} has a control character (CR, LF...)",
                param_hint="'-H'",
            )
        if name.strip().lower() == "authorization":
            raise click.BadParameter("the token comes from REPLICATE_API_TOKEN", param_hint="'-H'")
        headers[name.strip()] = value.strip()
    return headers


def _read_body(name: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if name == "-" else Path(name).expanduser().read_bytes()
    except OSError as exc:
        raise click.BadParameter(f"cannot read {name}: {exc.strerror}") from None


def _show(out: Output, content: bytes) -> None:
    try:
        data = load_json(content) if content.strip() else None
    except ValueError:
        out.write(content.decode(errors="replace").rstrip("\n") + "\n")
        return
    if data is None:
        return
    if out.json or not out.tty:
        out.emit_json(data)
    else:
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


@click.command("api")
@click.argument("path")
@click.option("-X", "--method", type=_METHODS, help="Default: GET, or POST with a body.")
@click.option("-f", "--field", "fields", multiple=True, metavar="KEY=TEXT|KEY:=JSON",
              help="A body field (a query parameter for GET); repeatable.")  # fmt: skip
@click.option(
    "--input", "body_file", metavar="FILE", help="The request body from FILE ('-': stdin)."
)
@click.option("-H", "--header", "header_lines", multiple=True, metavar="'NAME: VALUE'",
              help="An extra request header; repeatable.")  # fmt: skip
@json_option
@with_client
async def api(
    client: AsyncReplicate,
    out: Output,
    path: str,
    method: str | None,
    fields: tuple[str, ...],
    body_file: str | None,
    header_lines: tuple[str, ...],
) -> None:
    """Send a request to PATH (e.g. /v1/predictions, or models/owner/name) and print the
    answer: JSON pretty on a terminal, one line in a pipe (--jq filters it).

    \b
      replicate-async api /v1/account
      replicate-async api /v1/predictions --jq '.results[].id'
      replicate-async api -X POST /v1/models/fake/upper/predictions -f 'input:={"text":"hi"}'
    """
    from ..exceptions import APIStatusError
    from ._errors import describe_error

    body = _fields(fields)
    headers = _headers(header_lines)
    content = _read_body(body_file) if body_file is not None else None
    verb = (method or ("POST" if body or content is not None else "GET")).upper()
    params: dict[str, str] | None = None
    if body and verb in ("GET", "HEAD", "DELETE"):
        params = {key: v if isinstance(v, str) else json.dumps(v) for key, v in body.items()}
    elif body:
        content = json.dumps(body).encode()
    if content is not None:
        headers.setdefault("Content-Type", "application/json")
    url = api_path(path, client.base_url)
    try:
        response = await client._http.request(
            verb, url, params=params, content=content, headers=headers
        )
    except APIStatusError as exc:
        if exc.body is not None and not isinstance(exc.body, str):
            out.emit_json(exc.body)
        raise CLIError(describe_error(exc, client.base_url)) from None
    _show(out, response.content)
