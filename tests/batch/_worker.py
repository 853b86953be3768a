"""One batch worker process: ``python -m tests.batch._worker '<config JSON>'``.

Runs ``fake/echo`` over ``count`` inputs ``{"id": i, "text": ...}`` (a generator: the
ledger dedupes what an earlier, killed run added) in the batch at ``store``, then prints
the batch's status as one JSON line. The crash tests ``kill -9`` it at random moments.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

from replicate_async import AsyncReplicate, Throttle


def inputs(count: int) -> Iterator[dict[str, Any]]:
    for i in range(count):
        yield {"id": i, "text": f"item-{i}"}


async def main(config: dict[str, Any]) -> None:
    # The fake answers as fast as it can: no pacing at Replicate's 600 creates a minute.
    limiter = Throttle(create_per_minute=1e6, other_per_minute=1e6)
    async with AsyncReplicate(
        config["token"], base_url=config["base_url"], limiter=limiter
    ) as client:
        batch = client.batch(
            "fake/echo",
            inputs(config["count"]),
            store=config["store"],
            key="id",
            concurrency=config.get("concurrency", 50),
            settle=config.get("settle", 0.3),
            lease=config.get("lease", 60.0),
            worker=config.get("worker"),
            poll=config.get("poll", 0.2),
        )
        done = 0
        async for _ in batch:
            done += 1
            if done % 50 == 0:
                print(json.dumps({"done": done}), flush=True)
        status = await batch.status()
        print(json.dumps({"status": status.to_json(), "this_run": done}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
