"""A sweep of the whole public surface with hostile arguments: every operation, every
required argument set to one odd value at a time. Whatever happens, only a typed error
may come out: a ``ReplicateError`` (``InvalidArgumentError`` for a bad value, or the
API's answer), a ``TypeError`` naming a wrong type, or a ``FileNotFoundError`` for an
upload path that does not exist. Never an ``AttributeError``, ``OverflowError``,
``RecursionError``, ``KeyError`` or ``binascii.Error`` from inside the SDK.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import pytest

from replicate_async import AsyncReplicate, InvalidArgumentError, ReplicateError
from replicate_async.testing import FakeReplicate

#: One odd value of each kind.
ODD: list[Any] = [
    None,
    5,
    -1,
    1.5,
    math.nan,
    math.inf,
    10**400,
    True,
    "",
    ".",
    "..",
    "a/b",
    "%2e%2e",
    "x\r\ny",
    "\udc80",
    b"x",
    object(),
    [1],
    {"a": math.nan},
]

NAMESPACES = [
    "account",
    "collections",
    "deployments",
    "deployments.predictions",
    "files",
    "hardware",
    "models",
    "models.examples",
    "models.predictions",
    "models.readme",
    "models.versions",
    "predictions",
    "search",
    "trainings",
    "webhooks.default.secret",
]
CLIENT_METHODS = ["run", "run_many", "stream", "stream_output", "file_output", "use"]


def _resolve(client: AsyncReplicate, dotted: str) -> Any:
    target: Any = client
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


def _operations(client: AsyncReplicate) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for dotted in NAMESPACES:
        namespace = _resolve(client, dotted)
        for name in dir(namespace):
            member = getattr(namespace, name)
            if not name.startswith("_") and inspect.ismethod(member):
                found[f"{dotted}.{name}"] = member
    for name in CLIENT_METHODS:
        found[name] = getattr(client, name)
    return found


def _required(function: Callable[..., Any]) -> tuple[list[str], list[str]]:
    positional, keyword = [], []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.default is not parameter.empty:
            continue
        if parameter.kind is parameter.KEYWORD_ONLY:
            keyword.append(parameter.name)
        elif parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            positional.append(parameter.name)
    return positional, keyword


async def _call(function: Callable[..., Any], odd: Any) -> None:
    positional, keyword = _required(function)
    result = function(*[odd] * len(positional), **dict.fromkeys(keyword, odd))
    if inspect.isawaitable(result):
        await result
    elif hasattr(result, "__aiter__"):
        async for _ in result:
            break


def _allowed(name: str, odd: Any, error: BaseException) -> bool:
    if isinstance(error, ReplicateError | TypeError):
        return True
    if isinstance(error, ValueError):
        return isinstance(error, InvalidArgumentError)
    # An upload of a path that does not exist says so, with the path.
    return name == "files.create" and isinstance(error, FileNotFoundError) and str(error) != ""


async def test_no_foreign_exception_escapes_any_operation(replicate_fake: FakeReplicate) -> None:
    escaped: list[str] = []
    async with replicate_fake.client(max_retries=0) as client:
        operations = _operations(client)
        assert len(operations) >= 45
        for name, function in sorted(operations.items()):
            for odd in ODD:
                try:
                    await _call(function, odd)
                except Exception as error:  # the point is to classify any error
                    if not _allowed(name, odd, error):
                        escaped.append(f"{name}({odd!r:.20}): {type(error).__name__}: {error}")
    assert escaped == []


@pytest.mark.parametrize("odd", [None, 5, "x", object()], ids=repr)
async def test_streaming_something_that_is_not_a_prediction_is_a_type_error(
    replicate_fake: FakeReplicate, odd: Any
) -> None:
    """``predictions.stream("id")`` raised ``AttributeError: 'str' object has no attribute
    'urls'``."""
    async with replicate_fake.client() as client:
        with pytest.raises(TypeError, match="prediction must be a Prediction"):
            client.predictions.stream(odd)
    assert replicate_fake.requests == []
