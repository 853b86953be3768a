"""The issue's targets, and the Markdown report of a run (see :mod:`benchmarks.run`)."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from .contenders import RawAiohttp, RawLineParser, ThisSDK

SDK, RAW, LINES = ThisSDK.name, RawAiohttp.name, RawLineParser.name
#: Targets, as a ratio of client CPU to the floor's (issue #17).
REQUEST_TARGET = 1.2  # (a), (b), (d): CPU per request
WALK_TARGET = 1.0  # (g): live-shaped walk
LEAN_WALK_TARGET = 1.2  # (c)
SSE_TARGET = 1.2  # (e): against the line-parser floor
LAYER_TARGET = 1.2  # (e): client.stream/stream_output per event against predictions.stream


@dataclass
class Sample:
    """One repeat of one scenario by one client."""

    cpu: float
    wall: float
    ops: int
    requests: int = 0
    server_cpu: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Cell:
    """The median of a client's repeats of a scenario."""

    client: str
    samples: list[Sample]
    note: str = ""
    peak_mib: float | None = None
    first_item_requests: int | None = None

    def median(self, what: str) -> float:
        values = [_value(s, what) for s in self.samples]
        return statistics.median(values) if values else float("nan")

    def maximum(self, what: str) -> float:
        return max(_value(s, what) for s in self.samples)


def _value(sample: Sample, what: str) -> float:
    if what in ("cpu", "wall", "ops", "requests", "server_cpu"):
        return float(getattr(sample, what))
    return sample.extra.get(what, float("nan"))


@dataclass
class Result:
    """A scenario's cells, one per client, in the order the clients were listed."""

    key: str
    title: str
    unit: str  # what one "op" is, for the per-op column
    cells: dict[str, Cell] = field(default_factory=dict)
    #: The targets, met or not, of each of this SDK's rows (by client name).
    checks: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)

    def sdk_cells(self) -> list[Cell]:
        """This SDK's rows (its lower-layer call, then the calls users make), not "before"."""
        return [
            cell
            for name, cell in self.cells.items()
            if name.startswith(SDK) and not name.endswith("(before)") and cell.samples
        ]

    @property
    def floor(self) -> Cell | None:
        """The cell every ratio divides by: the line parser for SSE, else raw aiohttp."""
        return self.cells.get(LINES if self.key == "e" else RAW)


#: Peak RSS (MiB) of a live-shaped walk: client -> models walked -> MiB.
MemoryCurve = dict[str, dict[int, float]]


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _official(result: Result) -> Cell | None:
    return next((c for c in result.cells.values() if c.client.startswith("replicate ")), None)


def _per_request(cell: Cell) -> float:
    return ratio(cell.median("cpu"), cell.median("requests"))


def _cpu_ratio(result: Result, cell: Cell | None) -> float:
    """``cell``'s client CPU over the floor's (per request where requests are the unit)."""
    floor = result.floor
    if cell is None or floor is None:
        return float("nan")
    if result.key[0] in "abd":
        return ratio(_per_request(cell), _per_request(floor))
    return ratio(cell.median("cpu"), floor.median("cpu"))


def _walk_checks(
    result: Result, sdk: Cell, by_key: dict[str, Result], big: str, small: str
) -> None:
    checks = result.checks.setdefault(sdk.client, [])
    after = sdk.first_item_requests
    checks.append((f"first item after 1 page (after {after})", after == 1))
    other = by_key.get(small)
    if result.key == big and other is not None and SDK in other.cells:
        big_peak = sdk.peak_mib or 0.0
        small_peak = other.cells[SDK].peak_mib or 0.0
        flat = big_peak <= small_peak * 1.25 + 1.0
        checks.append((f"memory flat in N ({small_peak:.1f} → {big_peak:.1f} MiB)", flat))


def _poll_checks(result: Result, sdk: Cell, waits: int, polls: int, interval: float) -> None:
    needed = waits * (1 + polls)
    sent = int(sdk.maximum("requests"))
    over = int(sdk.maximum("over_polls"))
    text = f"no extra requests ({sent:,} sent, {needed:,} needed, {over} over-polls)"
    checks = result.checks.setdefault(sdk.client, [])
    checks.append((text, sent <= needed and over == 0))
    lag = sdk.median("lag_p99_s")
    if lag != lag:  # NaN: run_many times no single prediction
        return
    raw = result.cells.get(RAW)
    floor = raw.median("lag_p99_s") if raw is not None else float("nan")
    text = f"noticed within one interval (p99 lag {lag * 1000:.0f} ms; raw's {floor * 1000:.0f} ms)"
    checks.append((text, lag <= interval))


def check_targets(
    results: list[Result],
    *,
    models: tuple[int, int],
    live_models: tuple[int, int],
    waits: int,
    polls: int,
    interval: float,
) -> None:
    """Fill each result's ``checks`` with the issue's targets, met or not."""
    by_key = {r.key: r for r in results}
    for result in results:
        if result.floor is None:
            continue
        for sdk in result.sdk_cells():
            _targets(result, sdk, by_key, models, live_models)
            if result.key == "d":
                _poll_checks(result, sdk, waits, polls, interval)
            official = _official(result)
            if official is not None and not math.isnan(official.median("cpu")):
                faster = sdk.median("cpu") < official.median("cpu") and (
                    sdk.median("wall") < official.median("wall")
                )
                checks = result.checks.setdefault(sdk.client, [])
                checks.append(("faster than the official client (CPU and wall)", faster))


def _targets(
    result: Result,
    sdk: Cell,
    by_key: dict[str, Result],
    models: tuple[int, int],
    live_models: tuple[int, int],
) -> None:
    """The CPU targets of one of this SDK's rows."""
    key, checks = result.key, result.checks.setdefault(sdk.client, [])
    got = _cpu_ratio(result, sdk)
    if key in ("a", "b", "d"):
        checks.append(
            (f"CPU/request ≤ {REQUEST_TARGET} x raw (is {got:.2f})", got <= REQUEST_TARGET)
        )
    elif key.startswith("c"):
        checks.append((f"CPU ≤ {LEAN_WALK_TARGET} x raw (is {got:.2f})", got <= LEAN_WALK_TARGET))
        _walk_checks(result, sdk, by_key, f"c{models[0]}", f"c{models[1]}")
    elif key.startswith("g"):
        checks.append((f"CPU ≤ {WALK_TARGET} x raw (is {got:.2f})", got <= WALK_TARGET))
        _walk_checks(result, sdk, by_key, f"g{live_models[0]}", f"g{live_models[1]}")
    elif key == "e":
        text = f"CPU ≤ {SSE_TARGET} x the line parser (is {got:.2f})"
        checks.append((text, got <= SSE_TARGET))
        lower = result.cells.get(SDK)
        if lower is not None and lower is not sdk:
            per_event = ratio(
                sdk.median("cpu") / sdk.median("ops"), lower.median("cpu") / lower.median("ops")
            )
            text = f"CPU/event ≤ {LAYER_TARGET} x predictions.stream (is {per_event:.2f})"
            checks.append((text, per_event <= LAYER_TARGET))


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:.{digits}f}"


def _details(result: Result, cell: Cell) -> str:
    key = result.key
    parts = []
    if key[0] in "cg":
        parts.append(f"first item {cell.median('first_item_s') * 1000:.0f} ms")
        if cell.first_item_requests is not None:
            parts.append(f"after {cell.first_item_requests} req")
        if cell.peak_mib is not None:
            parts.append(f"peak {cell.peak_mib:.1f} MiB")
    elif key == "d":
        gets = cell.median("requests") - cell.median("ops")
        parts.append(f"{ratio(gets, cell.median('ops')):.2f} polls/pred")
        parts.append(f"latency p50 {cell.median('latency_p50_s') * 1000:.0f} ms")
        lag50, lag99 = cell.median("lag_p50_s") * 1000, cell.median("lag_p99_s") * 1000
        parts.append(f"lag p50 {lag50:.0f} / p99 {lag99:.0f} ms")
        parts.append(f"over-polls {int(cell.maximum('over_polls'))}")
    if cell.note:
        parts.append(cell.note)
    return "; ".join(parts)


def _raw_table(results: list[Result]) -> list[str]:
    lines = [
        "| scenario | client | CPU s | wall s | CPU µs/op | requests | server CPU s | details |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        for cell in result.cells.values():
            if not cell.samples:
                continue
            ops = cell.median("ops")
            per_op = ratio(cell.median("cpu"), ops) * 1e6 if ops else None
            lines.append(
                f"| {result.title} | {cell.client} | {_fmt(cell.median('cpu'))} "
                f"| {_fmt(cell.median('wall'))} | {_fmt(per_op, 1)} / {result.unit} "
                f"| {int(cell.median('requests')):,} | {_fmt(cell.median('server_cpu'), 2)} "
                f"| {_details(result, cell)} |"
            )
    return lines


def _ratio_table(results: list[Result]) -> list[str]:
    lines = [
        "| scenario | call | floor | replicate_async ÷ floor | before ÷ floor | official ÷ floor "
        "| replicate_async ÷ official | targets |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        floor = result.floor
        if floor is None:
            continue
        for sdk in result.sdk_cells():
            lines.append(_ratio_row(result, sdk, floor))
    return lines


def _ratio_row(result: Result, sdk: Cell, floor: Cell) -> str:
    official = _official(result)
    vs_official = None
    if official is not None:
        vs_official = ratio(sdk.median("cpu"), official.median("cpu"))
    checks = result.checks.get(sdk.client, [])
    targets = "<br>".join(f"{'✅' if ok else '❌'} {text}" for text, ok in checks)
    call = sdk.client.removeprefix(SDK).strip() or "lower layer"
    before = result.cells.get(f"{sdk.client} (before)")
    return (
        f"| {result.title} | {call} | {floor.client} | {_fmt(_cpu_ratio(result, sdk), 2)} "
        f"| {_fmt(_cpu_ratio(result, before), 2)} "
        f"| {_fmt(_cpu_ratio(result, official), 2)} | {_fmt(vs_official, 2)} "
        f"| {targets or '-'} |"
    )


def _memory_table(curve: MemoryCurve) -> list[str]:
    if not curve:
        return []
    sizes = sorted({n for per_client in curve.values() for n in per_client})
    lines = [
        "",
        "Peak RSS (MiB, above the opened client's) of one live-shaped walk, by models walked:",
        "",
        "| client | " + " | ".join(f"{n:,}" for n in sizes) + " |",
        "| --- |" + " ---: |" * len(sizes),
    ]
    for client, per_size in curve.items():
        cells = " | ".join(_fmt(per_size.get(n), 1) for n in sizes)
        lines.append(f"| {client} | {cells} |")
    return lines


def tables(results: list[Result], curve: MemoryCurve | None = None) -> str:
    """The results, the ratios (client CPU ÷ the floor's) and the memory curve, as Markdown."""
    lines = [
        *_raw_table(results),
        "",
        "Client CPU ÷ the floor's (per request for a, b, d); below 1 is cheaper than the floor:",
        "",
        *_ratio_table(results),
        *_memory_table(curve or {}),
    ]
    return "\n".join(lines)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _json_codec() -> str:
    """Which JSON codec replicate_async decodes with (it imports orjson if it can)."""
    import replicate_async._converter  # noqa: F401

    return "orjson" if sys.modules.get("orjson") is not None else "stdlib json"


def machine() -> str:
    """CPU model, cores, Python and library versions."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{model}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}); "
        f"aiohttp {_version('aiohttp')}, attrs {_version('attrs')}, "
        f"cattrs {_version('cattrs')}, orjson {_version('orjson')} "
        f"(replicate_async decodes with {_json_codec()}); "
        f"replicate {_version('replicate')}, httpx {_version('httpx')}, "
        f"pydantic {_version('pydantic')}"
    )


BEGIN, END = "<!-- benchmarks.run: begin -->", "<!-- benchmarks.run: end -->"


def write_section(path: Path, text: str) -> None:
    """Write the report between its markers in ``path``, keeping whatever else is there
    (other sections of a shared results file); a file without markers is replaced."""
    section = f"{BEGIN}\n{text.rstrip()}\n{END}\n"
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, _, rest = old.partition(BEGIN)
        _, _, tail = rest.partition(END)
        section = head + section.rstrip("\n") + tail
    path.write_text(section)


def report(
    results: list[Result],
    curve: MemoryCurve,
    *,
    mode: str,
    notes: list[str],
    took: float,
    load_before: tuple[float, float, float],
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.2f}" for x in load_before)
    header = [
        "## Client CPU side by side: replicate_async, raw aiohttp, replicate 1.0.7",
        "",
        f"- Date: {when}; mode: {mode}; run took {took:.0f} s.",
        f"- Machine: {machine()}.",
        "- Client-process CPU (`time.process_time()`); the server is another process. "
        "Requests are counted by the server.",
        f"- Load average (1, 5, 15 min) before the run: {load}.",
        *(f"- {note}." for note in notes if note),
    ]
    return "\n".join([*header, "", tables(results, curve), ""])
