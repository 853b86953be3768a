"""Many machines on one Redis ledger: four worker processes share a batch, one is
``kill -9``ed mid-batch; its claims return to the pool when their lease ends and the
others finish them. Every item is done exactly once (one prediction each on the fake)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path

from replicate_async.batch import RedisStore
from replicate_async.testing import FakeReplicate

from ..redis._servers import RedisServer
from .test_crash import finish, kill_after, start_worker

ITEMS = 400
WORKERS = 4


async def test_four_workers_one_killed(redis_server: RedisServer, tmp_path: Path) -> None:
    store_url = f"{redis_server.url}#batch-{uuid.uuid4().hex[:8]}"
    prefix = store_url.partition("#")[2]
    async with FakeReplicate() as fake:
        fake.set_model_behaviour("fake/echo", duration=0.1)
        # Worker ids without host:pid: only the lease (1.5 s) can free a dead one's claims.
        procs = [
            start_worker(
                fake, store_url, ITEMS, quiet=i == 0, concurrency=10, worker=f"w{i}", lease=1.5
            )
            for i in range(WORKERS)
        ]
        store = RedisStore.from_url(redis_server.url, prefix=prefix)
        try:
            for _ in range(250):  # until the doomed worker holds claims (5 s at most)
                held = await held_by(store, "w0")
                if held:
                    break
                await asyncio.sleep(0.02)
            assert await kill_after(procs[0], 0.0)
            orphans = await held_by(store, "w0")
            assert orphans, "the killed worker held no claims"
            results = await asyncio.gather(*(finish(proc) for proc in procs[1:]))
            assert all(r["status"]["counts"]["succeeded"] == ITEMS for r in results)
            items = {}
            after: int | None = 0
            while after is not None:
                page, after = await store.scan(None, after, 500)
                items.update({item.key: item for item in page})
        finally:
            await store.aclose()
    assert len(items) == ITEMS
    assert {item.state for item in items.values()} == {"succeeded"}
    assert all(items[key].owner not in (None, "w0") for key in orphans)
    made = Counter(str(p.input["id"]) for p in fake.predictions.values() if "id" in (p.input or {}))
    assert set(made) == set(items)
    assert max(made.values()) == 1, "an item was created twice"
    assert all(item.prediction_id is not None for item in items.values())


async def held_by(store: RedisStore, owner: str) -> set[str]:
    keys: set[str] = set()
    after: int | None = 0
    while after is not None:
        page, after = await store.scan(["creating", "running"], after, 500)
        keys.update(item.key for item in page if item.owner == owner)
    return keys
