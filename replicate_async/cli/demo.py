"""``replicate-async demo``: the SDK doing its real job, visibly, in about ten seconds.

By default it starts the fake Replicate API in this process (no network, no token) and
walks through six steps: lazy pagination of a 500-model catalogue, one run held open with
``Prefer: wait``, a token stream, a fan-out of 300 predictions through a durable batch
with injected faults (throttling that is waited out, lost answers found on the server and
adopted, failed creates sent again only when provably never made: nothing billed twice),
a deadline that cancels a slow prediction on the server, and a summary. With
``base_url`` (and ``REPLICATE_API_TOKEN``) the same steps run against that server with
``model``, sized down so it stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .. import AsyncReplicate, PredictionTimeoutError
from ._demo_plan import DemoPlan, DemoReport, fake_plan, prepare_fake, remote_plan

__all__ = ["DemoPlan", "DemoReport", "fake_plan", "main", "remote_plan", "run_demo"]


class _UI:
    """Rich output with a quiet mode (step results and the summary only)."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.console = console
        self.quiet = quiet

    def step(self, number: int, title: str, why: str) -> None:
        """A step's heading and what it shows (hidden when quiet)."""
        if self.quiet:
            return
        self.console.print()
        self.console.rule(f"[bold]{number}. {escape(title)}", align="left")
        self.console.print(f"[dim]{escape(why)}[/dim]")

    def detail(self, text: str) -> None:
        """A line of detail (hidden when quiet)."""
        if not self.quiet:
            self.console.print(text)

    def result(self, number: int, text: str) -> None:
        """A step's outcome (always shown)."""
        prefix = f"{number}. " if self.quiet else "[green]✓[/green] "
        self.console.print(prefix + text)


@contextlib.contextmanager
def _timer() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    yield lambda: time.perf_counter() - start


async def _aclose(iterator: object) -> None:
    """Finish an async generator left early (so its connection is released now)."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def _catalogue(client: AsyncReplicate, plan: DemoPlan, ui: _UI, report: DemoReport) -> None:
    ui.step(
        1,
        "The catalogue, page by page",
        "models.list() is lazy: a page is fetched only "
        "when the loop reaches it, and a 503 on the way is retried.",
    )
    requests = client.stats["requests"]
    with _timer() as elapsed:
        pages = client.models.list().pages()
        try:
            async for page in pages:
                report.pages += 1
                report.models += len(page)
                first = escape(page.results[0].ref) if page else ""
                ui.detail(
                    f"  page {report.pages:>2}: {len(page):>3} models, {report.models:>4} so far "
                    f"[dim]({first} …)[/dim]"
                )
                if plan.catalogue_pages is not None and report.pages >= plan.catalogue_pages:
                    break
        finally:
            await _aclose(pages)
    ui.result(
        1,
        f"{report.models} models in {report.pages} pages, "
        f"{client.stats['requests'] - requests} requests, {elapsed():.2f}s",
    )


async def _wait(client: AsyncReplicate, plan: DemoPlan, ui: _UI, report: DemoReport) -> None:
    ui.step(
        2,
        f"One prediction with Prefer: wait ({plan.wait_model})",
        "run() asks the server to hold the request until the output is ready: no polling.",
    )
    requests = client.stats["requests"]
    with _timer() as elapsed:
        output = await client.run(plan.wait_model, input=plan.wait_input)
    report.predictions += 1
    report.completed += 1
    text = output if isinstance(output, str) else "".join(map(str, output or []))
    ui.detail(f"  input  {escape(repr(plan.wait_input))}\n  output {escape(repr(text[:120]))}")
    ui.result(
        2,
        f"1 prediction, {client.stats['requests'] - requests} request(s), "
        f"{elapsed() * 1000:.0f} ms",
    )


async def _stream(client: AsyncReplicate, plan: DemoPlan, ui: _UI, report: DemoReport) -> None:
    ui.step(
        3,
        f"Streaming tokens ({plan.stream_model})",
        "stream() yields server-sent "
        "events as the model produces them; a dropped stream resumes where it left off.",
    )
    report.predictions += 1
    with _timer() as elapsed:
        first: float | None = None
        if not ui.quiet:
            ui.console.out("  ", end="")
        async for event in client.stream(plan.stream_model, input=plan.stream_input):
            if event.event != "output":
                continue
            first = elapsed() if first is None else first
            report.tokens += 1
            if not ui.quiet:
                ui.console.out(event.data, end="", highlight=False)
                ui.console.file.flush()
    if not ui.quiet:
        ui.console.out("")
    report.completed += 1
    ttft = f"first after {first * 1000:.0f} ms, " if first is not None else ""
    ui.result(3, f"{report.tokens} tokens streamed ({ttft}all in {elapsed():.2f}s)")


def _bar(console: Console, quiet: bool) -> Progress:
    """The fan-out's progress bar: done of total, how many ok and failed, time."""
    return Progress(
        TextColumn("  "),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[green]{task.fields[ok]} ok[/green] [red]{task.fields[failed]} failed[/red]"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
    )


async def _fanout(
    client: AsyncReplicate, plan: DemoPlan, ui: _UI, report: DemoReport, console: Console
) -> None:
    total = len(plan.fanout_inputs)
    ui.step(
        4,
        f"Fan-out: a durable batch of {total} predictions, {plan.concurrency} at a time",
        "client.batch() keeps a ledger (here a SQLite file): the intent is recorded before "
        "each create and the id after it. A create whose answer was lost is looked up on "
        "the server (predictions created since, same input) and adopted; only one "
        "provably never created is sent again. Every input is accounted for, none billed "
        "twice. " + plan.note,
    )
    requests, retries = client.stats["requests"], client.stats["retries"]
    started = datetime.now(UTC)
    bar = _bar(console, ui.quiet)
    task = bar.add_task("fan-out", total=total, ok=0, failed=0)
    outcome: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as folder, _timer() as elapsed:
        async with client.batch(
            plan.fanout_model,
            plan.fanout_inputs,
            store=Path(folder) / "batch.db",
            key=plan.fanout_key,
            concurrency=plan.concurrency,
            settle=plan.settle,
        ) as batch:
            with bar:
                async for item in batch:
                    outcome[item.state] += 1
                    done = sum(outcome.values())
                    ok = outcome["succeeded"]
                    bar.update(task, completed=done, ok=ok, failed=done - ok)
            status = await batch.status()
    report.completed += outcome["succeeded"]
    report.failed += total - outcome["succeeded"]
    report.predictions += total
    report.fanout_predictions = total
    report.fanout_requests = client.stats["requests"] - requests
    if outcome["succeeded"] < total:
        report.failures = {state: n for state, n in outcome.items() if state != "succeeded"}
    tally = batch.tally
    ui.detail(
        f"  {tally.adopted} lost answers found on the server and adopted (not paid twice); "
        f"{tally.recreated} failed creates sent again, the server having made nothing for them"
    )
    await _check_duplicates(client, plan, report, started)
    ui.detail(f"  batch status: {escape(status.line())}")
    ui.result(
        4,
        f"{outcome['succeeded']}/{total} succeeded in {elapsed():.2f}s, "
        f"{report.fanout_requests} requests, {client.stats['retries'] - retries} retries; "
        f"server has {report.server_predictions} predictions for {total} inputs, "
        f"{report.duplicates} duplicated",
    )


async def _check_duplicates(
    client: AsyncReplicate, plan: DemoPlan, report: DemoReport, since: datetime
) -> None:
    """Count, on the server, the predictions made for each fan-out input."""
    wanted = {str(item[plan.fanout_key]) for item in plan.fanout_inputs}
    seen: Counter[str] = Counter()
    async for prediction in client.predictions.list(created_after=since):
        key = str((prediction.input or {}).get(plan.fanout_key))
        if key in wanted:
            seen[key] += 1
    report.server_predictions = sum(seen.values())
    report.duplicates = sum(n - 1 for n in seen.values() if n > 1)


async def _cancel(client: AsyncReplicate, plan: DemoPlan, ui: _UI, report: DemoReport) -> None:
    ui.step(
        5,
        f"A deadline that cancels ({plan.slow_model})",
        f"run(timeout="
        f"{plan.slow_timeout:g}) is one deadline for the whole run; when it passes, the "
        "prediction is canceled on the server (Ctrl-C does the same), so it stops billing.",
    )
    report.predictions += 1
    with _timer() as elapsed:
        try:
            # A hold (Prefer: wait) shorter than the deadline: the id is known in time.
            await client.run(
                plan.slow_model, input=plan.slow_input, timeout=plan.slow_timeout, wait=1
            )
        except PredictionTimeoutError as exc:
            prediction = exc.prediction
            status = "unknown"
            if prediction is not None:
                status = (await client.predictions.get(prediction.id)).status
            report.canceled += status == "canceled"
            ui.detail(f"  [yellow]PredictionTimeoutError[/yellow]: {escape(str(exc))}")
            ui.result(
                5,
                f"gave up after {elapsed():.2f}s; on the server the prediction is "
                f"[bold]{escape(status)}[/bold]",
            )
            return
    report.completed += 1
    ui.result(5, f"it finished within the {plan.slow_timeout:g}s deadline ({elapsed():.2f}s)")


def _summary(report: DemoReport, console: Console) -> None:
    table = Table(title="Summary", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    per_prediction = report.fanout_requests / max(1, report.fanout_predictions)
    rows = [
        ("predictions", report.predictions),
        ("completed", report.completed),
        ("failed", report.failed),
        ("canceled by deadline", report.canceled),
        ("duplicated on the server", report.duplicates),
        ("retries", report.retries),
        ("HTTP requests", report.requests),
        ("requests per prediction (fan-out)", f"{per_prediction:.2f}"),
        ("models listed", report.models),
        ("tokens streamed", report.tokens),
        ("wall time", f"{report.wall:.1f}s"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print()
    console.print(table)


async def _steps(
    client: AsyncReplicate, plan: DemoPlan, console: Console, quiet: bool
) -> DemoReport:
    ui = _UI(console, quiet)
    report = DemoReport()
    with _timer() as elapsed:
        await _catalogue(client, plan, ui, report)
        await _wait(client, plan, ui, report)
        await _stream(client, plan, ui, report)
        await _fanout(client, plan, ui, report, console)
        await _cancel(client, plan, ui, report)
    report.wall = elapsed()
    report.retries = client.stats["retries"]
    report.requests = client.stats["requests"]
    _summary(report, console)
    return report


async def run_demo(
    console: Console | None = None,
    *,
    base_url: str | None = None,
    model: str | None = None,
    count: int | None = None,
    concurrency: int = 50,
    quiet: bool = False,
) -> DemoReport:
    """Run the demo and return its report.

    Without ``base_url``, against a fake server started in this process; with it, against
    that server (token from ``REPLICATE_API_TOKEN``) running ``model``.
    """
    if console is None:
        console = Console(highlight=False)
        console.soft_wrap = not console.is_terminal  # logs and pipes: one line per line
    if base_url is not None:
        if model is None:
            raise ValueError(
                "a model is needed with a base URL, e.g. meta/meta-llama-3-8b-instruct"
            )
        plan = remote_plan(model, count if count is not None else 3, concurrency)
        console.print(f"Replicate API at [bold]{escape(base_url)}[/bold], model {escape(model)}")
        async with AsyncReplicate(base_url=base_url) as client:
            return await _steps(client, plan, console, quiet)

    from ..testing import FakeReplicate

    async with FakeReplicate(slow_duration=60.0) as fake:
        prepare_fake(fake)
        console.print(
            f"Fake Replicate API at [bold]{fake.base_url}[/bold] "
            "[dim](in this process: no network, no token)[/dim]"
        )
        async with AsyncReplicate(api_token=fake.token, base_url=fake.base_url) as client:
            return await _steps(client, fake_plan(count or 300, concurrency), console, quiet)


def main(**options: Any) -> int:
    """Run :func:`run_demo` on a new event loop; return the exit status (0 on success)."""
    asyncio.run(run_demo(**options))
    return 0
