"""The demo, end to end: in-process against its own fake, and against a given server."""

from __future__ import annotations

import io
import re
import time

import pytest
from click.testing import CliRunner
from rich.console import Console

from replicate_async.cli import cli
from replicate_async.cli.demo import run_demo

from ._fakes import ThreadedFake


def test_demo_runs_in_process_and_summarises() -> None:
    start = time.monotonic()
    result = CliRunner().invoke(cli, ["demo", "--quiet"], env={"REPLICATE_API_TOKEN": ""})
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Summary" in out
    summary = dict(re.findall(r"│ ([a-z ()-]+?)\s+│\s+([\d.s]+) │", out))
    assert summary["predictions"] == "303"
    assert int(summary["completed"]) >= 290
    # 300 + 2 runs: the batch adopts the 2 predictions whose answers were lost and sends
    # the 2 creates refused with a 500 again (the server shows it made nothing for them).
    assert summary["completed"] == "302"
    assert summary["failed"] == "0"
    assert summary["canceled by deadline"] == "1"
    assert summary["duplicated on the server"] == "0"
    assert int(summary["retries"]) >= 4  # one 503 and three 429s, waited out
    assert float(summary["requests per prediction (fan-out)"]) < 1.1
    assert summary["models listed"] == "511"
    assert "300/300 succeeded" in out
    assert "server has 300 predictions for 300 inputs, 0 duplicated" in out
    assert "on the server the prediction is canceled" in out
    assert elapsed < 20


async def test_demo_against_a_given_server(
    server: ThreadedFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", server.fake.token)
    buffer = io.StringIO()
    console = Console(file=buffer, width=120)
    report = await run_demo(console, base_url=server.fake.base_url, model="fake/tokens", count=5)
    text = buffer.getvalue()
    assert report.pages == 2  # a real catalogue is only sampled: 2 of its 3 pages
    assert report.fanout_predictions == 5
    assert report.completed == 5 + 2 + 1  # fake/tokens finishes within the deadline too
    assert report.failed == 0
    assert report.duplicates == 0
    assert "it finished within the 2s deadline" in text
    assert "Summary" in text


def test_demo_needs_a_model_with_a_base_url() -> None:
    result = CliRunner().invoke(cli, ["demo", "--base-url", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 2
    assert "--model is required" in result.stderr
