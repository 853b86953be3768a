"""Static types of the per-call options, ``Status``, webhook events and paginators' raw
responses; and the test that runs ``mypy --strict`` over this folder.

The ``# type: ignore[...]`` comments below must be needed (``warn_unused_ignores`` is on
under ``--strict``), so each one proves a type checker rejects that call; pytest then
shows the same call refused at run time, before any request.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import assert_type

import pytest

from replicate_async import AsyncReplicate, InvalidArgumentError, Status
from replicate_async._core.options import RequestOptionsDict
from replicate_async._core.raw import RawResponse
from replicate_async.models import KNOWN_STATUSES, TERMINAL_STATUSES, File, Model, Page, Prediction

HERE = Path(__file__).parent


async def _typed_calls(client: AsyncReplicate) -> None:
    """Never run: mypy checks these signatures (pytest cannot see them)."""
    prediction = await client.predictions.get(
        "p", timeout=5, extra_headers={"X": "1"}, extra_query={"a": "b"}, max_retries=0
    )
    assert_type(prediction, Prediction)
    assert_type(
        await client.predictions.create(
            version="v", input={}, webhook_events_filter=["start", "completed"], extra_body={}
        ),
        Prediction,
    )
    assert_type(await client.models.update("o/m", description="d", timeout=3), Model)
    options: RequestOptionsDict = {"timeout": 2.5, "max_retries": 1}
    assert_type(await client.files.get("f", **options), File)
    files = client.files.list(extra_headers={"X": "1"})
    assert_type(files.last_response, RawResponse[Page[File]] | None)
    raw = files.last_response
    if raw is not None:
        assert_type(raw.parse(), Page[File])
        assert_type(raw.status, int)
        assert_type(raw.retries, int)
        assert_type(raw.elapsed, float)
    status: Status = prediction.status  # type: ignore[assignment]
    assert_type(status, Status)


def test_status_is_a_literal_of_the_known_statuses() -> None:
    done: Status = "succeeded"
    assert_type(done, Status)
    assert done in TERMINAL_STATUSES <= KNOWN_STATUSES
    bogus: Status = "finished"  # type: ignore[assignment]
    assert bogus not in KNOWN_STATUSES  # unknown statuses still pass through as str


async def test_call_options_are_typed_and_checked() -> None:
    client = AsyncReplicate(api_token="t")
    with pytest.raises(TypeError):
        await client.account.get(max_retry=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        await client.predictions.get("p", timeout="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.models.list(extra_query={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        await client.models.update("o/m", descripton="typo")  # type: ignore[call-arg]
    with pytest.raises(InvalidArgumentError):
        await client.predictions.create(
            version="a" * 64,
            input={},
            webhook="https://example.com/hook",
            webhook_events_filter=["finished"],  # type: ignore[list-item]
        )
    await client.aclose()


def test_mypy_strict_accepts_this_folder(tmp_path: Path) -> None:
    """Every ``assert_type`` here and in the other typing tests holds under mypy --strict,
    and every ``type: ignore`` is needed."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "mypy"),
            str(HERE),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
