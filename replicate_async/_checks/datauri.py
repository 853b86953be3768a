"""``data:`` URLs (RFC 2397): encoded for small input files, decoded locally and strictly.

``data:[<mediatype>][;base64],<data>``: the ``;base64`` marker is matched without regard
to case; the data is percent-decoded first (RFC 2397 data is URL characters), then, with
``;base64``, decoded as standard base64 (padding may be omitted; whitespace is ignored).
Anything else (no comma, a character outside the base64 alphabet, a length no base64
text can have) raises :class:`~replicate_async.DataURLError`, never a ``binascii.Error``
or an empty result.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

from ..exceptions import DataURLError

__all__ = ["decode_data_url", "encode_data_url", "is_data_url"]

_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_WHITESPACE = re.compile(rb"[ \t\r\n]+")


def is_data_url(url: str) -> bool:
    """True if ``url`` has the ``data:`` scheme (in any case)."""
    return url[:5].lower() == "data:"


def encode_data_url(data: bytes, content_type: str | None) -> str:
    """``data:<type>;base64,<data>`` (``application/octet-stream`` when the type is unknown)."""
    ctype = content_type or "application/octet-stream"
    return f"data:{ctype};base64,{base64.b64encode(data).decode()}"


def _split(url: str) -> tuple[list[str], str]:
    if not isinstance(url, str) or not is_data_url(url):
        raise DataURLError(f"not a data: URL: {url!r:.40}")
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise DataURLError("a data: URL needs a ',' before its data")
    return [part.strip() for part in header.split(";")], payload


def decode_data_url(url: str) -> bytes:
    """The bytes a ``data:`` URL carries; :class:`DataURLError` if it is malformed."""
    params, payload = _split(url)
    data = unquote_to_bytes(payload)
    if not (params and params[-1].lower() == "base64"):
        return data
    text = _WHITESPACE.sub(b"", data)
    if _BASE64.fullmatch(text) is None or len(text.rstrip(b"=")) % 4 == 1:
        raise DataURLError("a data: URL's base64 data is not valid base64")
    text = text.rstrip(b"=")
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by the checks above
        raise DataURLError("a data: URL's base64 data is not valid base64") from None
