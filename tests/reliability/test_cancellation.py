"""Cancellation: abandoning in-flight run() calls cancels every prediction they created.

1,000 runs of a model that would take an hour are cancelled, each at a moment drawn
from a seeded generator. Some moments are tied to what the server sees, so that every
phase is hit however fast the machine is:

- before run() starts;
- while the create request is being served (a ``Prefer: wait=1`` hold, for one run in
  twenty);
- while a poll is being served;
- just after a poll, while the run sleeps until the next one;
- at a random time, which may fall while a create waits for a connection slot.

Afterwards the fake's state must show:

- every prediction that was created as ``canceled``, each created once and canceled once;
- no request still being served;
- no response or pooled connection left open, and no socket left open;
- no task left behind, and nothing reported to the loop.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import time
import warnings
from collections.abc import Callable
from typing import Any

from aiohttp import web

from replicate_async import PollPolicy
from replicate_async.testing import FakeReplicate
from tests.helpers import eventually

from ._support import LoopErrors, ServerMeter, open_client_objects

RUNS = 1_000
SEED = 20_240_611
#: Every 20th run asks the server to hold its create (``Prefer: wait=1``).
HOLD_EVERY = 20
PHASES = ["before start", "during create", "during poll", "after poll", "random time"]
WEIGHTS = [1, 2, 2, 2, 3]


class Triggers:
    """Calls back when the server receives a given run's create, or its first poll."""

    def __init__(self, fake: FakeReplicate) -> None:
        self.on_create: dict[int, Callable[[], Any]] = {}
        self.on_poll: dict[int, Callable[[], Any]] = {}
        self.runs: dict[str, int] = {}  # prediction id -> run number
        fake.app.middlewares.append(self._middleware)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        run: int | None = None
        if request.method == "POST" and request.path == "/v1/predictions":
            run = (await request.json())["input"]["run"]
            if (fire := self.on_create.pop(run, None)) is not None:
                fire()
        elif request.method == "GET" and request.path.startswith("/v1/predictions/"):
            polled = self.runs.get(request.path.rsplit("/", 1)[1])
            if polled is not None and (fire := self.on_poll.pop(polled, None)) is not None:
                fire()
        response: web.StreamResponse = await handler(request)
        if run is not None and isinstance(response, web.Response) and response.status < 300:
            assert isinstance(response.body, bytes)
            self.runs[json.loads(response.body)["id"]] = run
        return response


async def test_cancelled_runs_cancel_their_predictions(loop_errors: LoopErrors) -> None:
    fake = FakeReplicate()
    meter = ServerMeter(fake)
    triggers = Triggers(fake)
    fake.set_model_behaviour("fake/echo", duration=3600)  # never finishes by itself
    rng = random.Random(SEED)
    loop = asyncio.get_running_loop()
    phases: collections.Counter[str] = collections.Counter()
    async with fake:
        version = fake.latest_version_id("fake/echo")
        me = asyncio.current_task()
        before = asyncio.all_tasks()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            started = time.perf_counter()
            poll = PollPolicy(initial=0.02, maximum=0.1)
            async with fake.client(max_connections=50, poll=poll) as client:
                tasks = []
                for i in range(RUNS):
                    wait = 1 if i % HOLD_EVERY == 0 else False
                    run = client.run(f"fake/echo:{version}", input={"run": i}, wait=wait)
                    task = asyncio.ensure_future(run)
                    tasks.append(task)
                    phase = rng.choices(PHASES, WEIGHTS)[0]
                    phases[phase] += 1
                    if phase == "before start":
                        task.cancel()  # it never runs: nothing may be created
                    elif phase == "during create":
                        triggers.on_create[i] = task.cancel
                    elif phase == "during poll":
                        triggers.on_poll[i] = task.cancel
                    elif phase == "after poll":
                        triggers.on_poll[i] = lambda t=task: loop.call_later(0.005, t.cancel)
                    else:
                        loop.call_later(rng.uniform(0.0, 0.5), task.cancel)
                async with asyncio.timeout(60):  # bounded: fails rather than hangs
                    results = await asyncio.gather(*tasks, return_exceptions=True)
                elapsed = time.perf_counter() - started
                serving_after = meter.in_flight
                left_open = open_client_objects()  # before the close would release them
                stats = dict(client.stats)
            await eventually(lambda: meter.open_now() == 0, timeout=10.0)
            await eventually(lambda: not (asyncio.all_tasks() - before - {me}), timeout=10.0)
            del tasks
            open_client_objects()  # a full collection: "never retrieved" reports surface
            await asyncio.sleep(0)

        created = fake.requests_matching("POST", "/v1/predictions")
        cancels = collections.Counter(
            r.path.split("/")[3] for r in fake.requests_matching("POST", "/v1/predictions/*/cancel")
        )
        polls = fake.count("GET", "/v1/predictions/*")
        async with fake.client() as probe:
            mine = [
                p
                for p in await probe.predictions.list().collect()
                if p.input is not None and "run" in p.input
            ]

    statuses = collections.Counter(p.status for p in mine)
    print(
        f"\n{RUNS} runs cancelled in {elapsed:.2f}s ({dict(phases)}): {len(mine)} "
        f"predictions created; {sum(cancels.values())} cancel requests, {polls} polls, "
        f"{stats['requests']} requests in all; statuses {dict(statuses)}"
    )
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert triggers.on_create == {}  # every phase-tied cancellation did fire
    assert triggers.on_poll == {}
    # Nothing lost: every prediction the server created was canceled on the server...
    assert statuses == {"canceled": len(mine)}
    # ...and nothing duplicated: one create and one cancel request per prediction.
    assert len(created) == len(mine)
    assert sorted(r.json()["input"]["run"] for r in created) == sorted(
        p.input["run"] for p in mine if p.input is not None
    )
    assert cancels == {p.id: 1 for p in mine}
    # Runs cancelled before they started created nothing; those cancelled once the server
    # had their create did create (and cancel) one. (A run cancelled while its create
    # waits for a connection slot still creates it today, then cancels it.)
    reached_server = phases["during create"] + phases["during poll"] + phases["after poll"]
    assert reached_server <= len(mine) <= RUNS - phases["before start"]
    # No request still being served; no response, socket, task, warning or loop error left.
    assert serving_after == 0
    assert left_open == []
    assert [str(w.message) for w in caught] == []
    assert loop_errors.contexts == [], loop_errors.messages
