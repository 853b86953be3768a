"""``replicate-async batch ...`` as a user meets it: in a pipe (JSON lines), on a terminal
(a progress line; Ctrl-C leaves a resumable batch and says how to resume)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..cli._fakes import ThreadedFake
from ..cli._term import Terminal, piped

ITEMS = 20


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedFake]:
    threaded = ThreadedFake().start()
    try:
        yield threaded
    finally:
        threaded.stop()


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    path = tmp_path / "inputs.jsonl"
    lines = (json.dumps({"id": f"k{i}", "text": f"{tmp_path.name} {i}"}) for i in range(ITEMS))
    path.write_text("\n".join(lines) + "\n")
    return path


def made_for(server: ThreadedFake, inputs: Path) -> Counter[str]:
    """Predictions on the server per input id (for this test's inputs only)."""
    rows = [json.loads(line) for line in inputs.read_text().splitlines()]
    texts = {row["text"]: row["id"] for row in rows}

    def count(fake: object) -> Counter[str]:
        found: Counter[str] = Counter()
        for prediction in server.fake.predictions.values():
            text = (prediction.input or {}).get("text")
            if text in texts:
                found[texts[text]] += 1
        return found

    return server.call(count)


def test_run_in_a_pipe_prints_json_lines_and_writes_the_results(
    server: ThreadedFake, inputs: Path, tmp_path: Path
) -> None:
    store, results = str(tmp_path / "b.db"), tmp_path / "results.jsonl"
    args = ["batch", "run", "fake/echo", str(inputs), "--key", "id", "--store", store]
    done = piped(server.env, *args, "-o", str(results))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(line["key"] for line in lines) == sorted(f"k{i}" for i in range(ITEMS))
    assert {line["state"] for line in lines} == {"succeeded"}
    assert f"{ITEMS}/{ITEMS} done, {ITEMS} succeeded" in done.stderr
    exported = [json.loads(line) for line in results.read_text().splitlines()]
    assert [line["key"] for line in exported] == [f"k{i}" for i in range(ITEMS)]
    status = piped(server.env, "--json", "batch", "status", "--store", store)
    assert json.loads(status.stdout)["counts"]["succeeded"] == ITEMS
    again = piped(server.env, *args)  # the same file again: every key is done already
    assert again.returncode == 0
    assert again.stdout == ""
    assert max(made_for(server, inputs).values()) == 1


def test_ctrl_c_leaves_a_resumable_batch_and_says_how_to_resume(
    server: ThreadedFake, inputs: Path, tmp_path: Path
) -> None:
    server.call(lambda fake: fake.set_model_behaviour("fake/echo", duration=0.4))
    store = str(tmp_path / "b.db")
    try:
        term = Terminal(
            server.env, "batch", "run", "fake/echo", str(inputs), "--store", store, "-c", "2"
        )
        term.expect(r"\d+/20 done")  # the progress line
        term.type("\x03")
        code, text = term.finish()
        assert code == 130, text
        assert (
            f"Interrupted: the batch is kept in {store}. Resume it with: "
            f"replicate-async batch resume --store {store}"
        ) in " ".join(text.split())
        assert "Traceback" not in text
        status = json.loads(piped(server.env, "--json", "batch", "status", "--store", store).stdout)
        assert status["counts"]["succeeded"] < ITEMS
        resumed = piped(server.env, "batch", "resume", "--store", store)
        assert resumed.returncode == 0, resumed.stderr
        # What Ctrl-C left mid-create (or running) is found again, not created again.
        assert re.search(
            r"resumed: \d+ running predictions re-attached by id, \d+ lost", resumed.stderr
        )
    finally:
        server.call(lambda fake: fake.reset_model_behaviour("fake/echo"))
    status = json.loads(piped(server.env, "--json", "batch", "status", "--store", store).stdout)
    assert status["counts"]["succeeded"] == ITEMS
    made = made_for(server, inputs)
    assert len(made) == ITEMS
    assert max(made.values()) == 1  # interrupted creates were found, not sent twice


def test_failed_items_are_retried_on_request(
    server: ThreadedFake, inputs: Path, tmp_path: Path
) -> None:
    store = str(tmp_path / "b.db")
    failed = piped(server.env, "batch", "run", "fake/fail", str(inputs), "--store", store)
    assert failed.returncode == 1
    assert f"{ITEMS} items did not succeed" in failed.stderr
    retried = piped(server.env, "batch", "retry", "--failed", "--store", store)
    assert f"{ITEMS} items back to pending" in retried.stderr
    exported = piped(server.env, "batch", "export", "--store", store)
    assert {json.loads(line)["state"] for line in exported.stdout.splitlines()} == {"pending"}


def test_an_empty_ledger_without_a_model_is_a_clear_error(
    server: ThreadedFake, tmp_path: Path
) -> None:
    done = piped(server.env, "batch", "status", "--store", str(tmp_path / "new.db"))
    assert done.returncode != 0
    assert "this batch has no model yet" in done.stderr
    assert "Traceback" not in done.stderr


async def test_the_progress_line_spends_at_most_a_twentieth_of_the_time_on_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Each redraw counts the whole ledger (tens of milliseconds at 100,000 items) while the
    # batch waits: redraws come every 0.25 s at most, and less often when status is slow.
    from replicate_async.cli.batch import _items

    now = 0.0
    calls = 0

    class Job:
        def __init__(self, status_cost: float) -> None:
            self.status_cost = status_cost

        async def __aiter__(self) -> Any:
            nonlocal now
            for _ in range(100):  # an item every 50 ms: 5 s in all
                now += 0.05
                yield object()

        async def status(self) -> Any:
            nonlocal now, calls
            calls += 1
            now += self.status_cost

            class Status:
                def line(self) -> str:
                    return f"redraw {calls}"

            return Status()

    await _items(None, Job(0.001), True, clock=lambda: now)  # type: ignore[arg-type]
    quick, calls, now = calls, 0, 0.0
    await _items(None, Job(0.1), True, clock=lambda: now)  # type: ignore[arg-type]
    assert 15 <= quick <= 20  # every 0.25 s (5 items)
    assert 2 <= calls <= 4  # every 2 s: 20 times the 0.1 s one took
    assert capsys.readouterr().err.endswith(f"redraw {calls}")
