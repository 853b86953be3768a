"""One worker process of a fleet sharing a Replicate account (the fake) and a Redis.

``python -m tests.redis._worker '<config JSON>'``; prints JSON lines, the last one its result.
Modes: ``creates`` (N creates through the shared or the local limiter), ``webhooks`` (N runs
completed by webhooks that reach any worker on one shared port), ``tracked`` (creates slow
runs, tracks them in the in-flight registry, then idles until stdin closes or it is killed),
``fleet_runs`` (``run()``, ``stream()`` and ``WebhookWaiter.run()`` of slow runs through
``AsyncReplicate(fleet=...)``, then idles likewise). Logs go to stderr at INFO.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections import Counter
from typing import Any

from aiohttp import web
from redis.asyncio.cluster import RedisCluster

from replicate_async import AsyncReplicate, WebhookWaiter
from replicate_async.redis import (
    Fleet,
    InFlightRegistry,
    RedisCompletionBus,
    RedisRateLimiter,
    connect,
)


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def redis_client(config: dict[str, Any]) -> Any:
    """The worker's redis-py client: a cluster client when ``cluster`` is set."""
    if config.get("cluster"):
        return RedisCluster.from_url(config["redis_url"])
    return connect(config["redis_url"], socket_timeout=None)


async def creates(config: dict[str, Any]) -> dict[str, Any]:
    limiter = None
    if config.get("redis_url"):
        limiter = RedisRateLimiter(
            redis_client(config),
            close_redis=True,
            prefix=config["prefix"],
            create_per_minute=config["create_per_minute"],
            create_burst=config.get("create_burst"),
            operation_timeout=config.get("operation_timeout") or 0.5,
            local_share=config.get("local_share", 1.0),
        )
    errors: Counter[str] = Counter()
    gate = asyncio.Semaphore(config["concurrency"])
    async with AsyncReplicate(
        config["token"], base_url=config["base_url"], limiter=limiter
    ) as client:

        async def one(i: int) -> None:
            async with gate:
                try:
                    await client.predictions.create(
                        version="fake/echo", input={"text": f"w{config['index']}-{i}"}
                    )
                except Exception as exc:
                    errors[type(exc).__name__] += 1

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(config["count"])))
        elapsed = time.monotonic() - started
    result = {"failed": sum(errors.values()), "errors": dict(errors), "elapsed": elapsed}
    if limiter is not None:
        result |= {"stats": limiter.stats, "using_redis": limiter.using_redis}
        await limiter.aclose()
    return result


async def webhooks(config: dict[str, Any]) -> dict[str, Any]:
    url = f"http://127.0.0.1:{config['port']}/hook"
    bus = RedisCompletionBus(redis_client(config), prefix=config["prefix"], close_redis=True)
    async with AsyncReplicate(config["token"], base_url=config["base_url"]) as client:
        waiter = WebhookWaiter.from_client(
            client, listen=False, public_url=url, bus=bus, safety_poll=config["safety_poll"]
        )
        delivered: dict[str, float] = {}

        async def route(request: web.Request) -> web.Response:
            body = await request.read()
            arrived = time.time()
            status, text = await waiter.handle(request.headers, body)
            delivered[json.loads(body)["input"]["text"]] = arrived
            return web.Response(status=status, text=text)

        app = web.Application()
        app.router.add_post("/hook", route)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # Every worker listens on the same port, like `uvicorn --workers 4`: the kernel
        # hands each delivery to any one of them.
        await web.TCPSite(runner, "127.0.0.1", config["port"], reuse_port=True).start()
        say(listening=True)
        await asyncio.to_thread(sys.stdin.readline)  # go: every worker listens now
        resolved: dict[str, float] = {}

        async def one(i: int) -> None:
            text = f"w{config['index']}-{i}"
            await waiter.run(client, "fake/echo", input={"text": text}, timeout=60)
            resolved[text] = time.time()

        try:
            async with waiter:
                await asyncio.gather(*(one(i) for i in range(config["count"])))
                say(done=True)
                await asyncio.to_thread(sys.stdin.readline)  # stay up for the others
        finally:
            await runner.cleanup()
            await bus.aclose()
    return {
        "completed": len(resolved),
        "resolved": resolved,
        "delivered": delivered,
        "stats": waiter.stats,
        "bus": bus.stats,
    }


async def tracked(config: dict[str, Any]) -> dict[str, Any]:
    async with AsyncReplicate(config["token"], base_url=config["base_url"]) as client:
        registry = InFlightRegistry.from_url(
            config["redis_url"],
            client,
            prefix=config["prefix"],
            lease=config["lease"],
            operation_timeout=config.get("operation_timeout"),
        )
        async with registry:
            ids = []
            for _ in range(config["count"]):
                prediction = await client.predictions.create(version="fake/slow", input={})
                await registry.add(prediction)
                ids.append(prediction.id)
            say(ids=ids, owner=registry.owner)
            # Idle until told to stop (stdin closes) or killed; bounded all the same.
            async with asyncio.timeout(120):
                await asyncio.to_thread(sys.stdin.readline)
            swept = registry.stats["canceled"]
    return {"ids": ids, "canceled_by_me": swept}


async def fleet_runs(config: dict[str, Any]) -> dict[str, Any]:
    tag = f"w{config['index']}"
    fleet = Fleet.from_url(config["redis_url"], prefix=config["prefix"], lease=config["lease"])
    async with (
        fleet,
        AsyncReplicate(config["token"], base_url=config["base_url"], fleet=fleet) as client,
    ):
        waiter = WebhookWaiter.from_client(client, bus=fleet.bus)

        async def streamed() -> None:
            async for _ in client.stream("fake/slow", input={"text": f"{tag}-stream"}):
                pass

        async with waiter:
            runs = [
                client.run("fake/slow", input={"text": f"{tag}-run"}, timeout=300),
                streamed(),
                waiter.run(client, "fake/slow", input={"text": f"{tag}-waiter"}, timeout=300),
            ]
            tasks = [asyncio.ensure_future(run) for run in runs]
            for _ in range(50):  # bounded: 5 s for the three creates to be recorded
                if len(fleet.registry.in_flight) >= 3:
                    break
                await asyncio.sleep(0.1)
            say(
                started=True, in_flight=sorted(fleet.registry.in_flight), owner=fleet.registry.owner
            )
            async with asyncio.timeout(120):
                await asyncio.to_thread(sys.stdin.readline)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
    return {"stats": fleet.stats()}


MODES = {"creates": creates, "webhooks": webhooks, "tracked": tracked, "fleet_runs": fleet_runs}

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
    settings = json.loads(sys.argv[1])
    say(**asyncio.run(MODES[settings["mode"]](settings)))
