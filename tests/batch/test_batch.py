"""A batch's behaviour against the fake over real sockets, in both stores: what is sent,
what the ledger records, and what the caller gets back."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from replicate_async import AsyncReplicate, InvalidArgumentError
from replicate_async.batch import Batch, BatchItem, open_store
from replicate_async.testing import FakeReplicate

CREATE = "/v1/models/fake/echo/predictions"


async def collect(batch: Batch) -> dict[str, BatchItem]:
    async with batch:
        return {item.key: item async for item in batch}


def creates(fake: FakeReplicate, path: str = CREATE) -> int:
    return fake.count("POST", path)


async def ghost_claim(store: str, ref: str, rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Leave ``rows`` as a dead worker would: claimed (intent recorded two minutes ago,
    lease long expired) by a worker that will never come back."""
    ledger, _ = open_store(store)
    try:
        await ledger.open({"ref": ref, "key": "id"})
        await ledger.add([(key, json.dumps(value)) for key, value in rows])
        for key, _ in rows:
            (claimed,) = await ledger.claim("ghost", time.time() - 120, 60.0, 1, key=key)
            assert claimed.state == "creating"
    finally:
        await ledger.aclose()


async def record_id(store: str, key: str, prediction_id: str) -> None:
    ledger, _ = open_store(store)
    try:
        fields = {"state": "running", "prediction_id": prediction_id}
        assert await ledger.update(key, fields, owner="ghost")
    finally:
        await ledger.aclose()


async def test_runs_every_input_once_and_a_key_twice_is_a_no_op(
    client: AsyncReplicate, fake: FakeReplicate, store: str
) -> None:
    inputs = [{"id": i % 5, "text": f"t{i % 5}"} for i in range(8)]  # keys 0-2 twice
    items = await collect(client.batch("fake/echo", inputs, store=store, key="id"))
    assert sorted(items) == ["0", "1", "2", "3", "4"]
    assert creates(fake) == 5
    sent = [json.loads(r.body)["input"] for r in fake.requests_matching("POST", CREATE)]
    assert sorted(s["id"] for s in sent) == [0, 1, 2, 3, 4]
    assert items["3"].state == "succeeded"
    assert items["3"].output == {"id": 3, "text": "t3"}
    assert items["3"].attempts == 1
    assert items["3"].prediction_id in fake.predictions
    again = client.batch("fake/echo", inputs, store=store, key="id")
    assert await collect(again) == {}  # all done: nothing is sent again
    assert creates(fake) == 5
    async with client.batch(None, store=store) as existing:
        status = await existing.status()
    assert status.counts["succeeded"] == status.total == 5
    assert status.complete


async def test_a_running_item_is_reattached_by_id_never_created_again(
    client: AsyncReplicate, fake: FakeReplicate, store: str
) -> None:
    await ghost_claim(store, "fake/echo", [("a", {"text": "a"})])
    made = await client.models.predictions.create("fake/echo", input={"text": "a"})
    await record_id(store, "a", made.id)
    before = creates(fake)
    items = await collect(client.batch(None, store=store))
    assert creates(fake) == before
    assert items["a"].prediction_id == made.id
    assert items["a"].state == "succeeded"
    assert items["a"].output == {"text": "a"}


async def test_a_create_that_reached_the_server_is_found_and_adopted(
    client: AsyncReplicate, fake: FakeReplicate, store: str
) -> None:
    await ghost_claim(store, "fake/echo", [("a", {"text": "a"}), ("b", {"text": "b"})])
    made = await client.models.predictions.create("fake/echo", input={"text": "a"})
    before = creates(fake)
    items = await collect(client.batch(None, store=store, settle=0.1))
    listed = fake.requests_matching("GET", "/v1/predictions")
    assert listed
    assert "created_after" in listed[0].query
    assert items["a"].prediction_id == made.id
    assert items["a"].attempts == 1
    assert creates(fake) == before + 1  # only "b", provably never created, is sent
    assert items["b"].attempts == 2
    assert items["b"].state == "succeeded"


async def test_twins_that_cannot_be_told_apart_are_reported_not_paid_twice(
    client: AsyncReplicate, fake: FakeReplicate, store: str
) -> None:
    same = {"text": "same"}
    await ghost_claim(store, "fake/echo", [("x", same), ("y", same)])
    await client.models.predictions.create("fake/echo", input=same)
    before = creates(fake)
    async with client.batch(None, store=store, settle=0.1) as batch:
        items = {item.key: item async for item in batch}
        assert creates(fake) == before
        assert items["x"].state == items["y"].state == "unresolved"
        assert "share this exact input" in (items["x"].error or "")
        assert await batch.retry(unresolved=True) == 2
        assert (await batch.status()).counts["pending"] == 2


async def test_a_webhook_base_carries_the_key_and_matches_by_it(
    client: AsyncReplicate, fake: FakeReplicate, tmp_path: Path
) -> None:
    store = str(tmp_path / "b.db")
    hook = "https://hooks.example.com/replicate?team=7"
    batch = client.batch("fake/echo", [{"id": "k1", "text": "x"}], store=store, webhook=hook)
    await collect(batch)
    sent = fake.requests_matching("POST", CREATE)[0].json()
    assert sent["webhook"] == hook + "&replicate_batch_key=k1"
    assert sent["webhook_events_filter"] == ["completed"]
    # An item caught between intent and id: its input matches nothing, its key does.
    ledger, _ = open_store(store)
    await ledger.add([("k2", json.dumps({"text": "y"}))])
    await ledger.claim("ghost", time.time() - 120, 60.0, 1)
    await ledger.aclose()
    made = await client.models.predictions.create(
        "fake/echo",
        input={"text": "changed by a file upload"},
        webhook=hook + "&replicate_batch_key=k2",
    )
    items = await collect(client.batch(None, store=store, settle=0.1))
    assert items["k2"].prediction_id == made.id


async def test_failed_items_are_recorded_and_retried_on_request(
    client: AsyncReplicate, fake: FakeReplicate, store: str
) -> None:
    inputs = [{"id": i, "text": "x"} for i in range(3)]
    path = "/v1/models/fake/fail/predictions"
    async with client.batch("fake/fail", inputs, store=store) as batch:
        items = {item.key: item async for item in batch}
        assert {item.state for item in items.values()} == {"failed"}
        assert all(item.error for item in items.values())
        assert creates(fake, path) == 3
        assert await batch.retry(failed_only=True) == 3
    again = await collect(client.batch(None, store=store))
    assert creates(fake, path) == 6
    assert {item.attempts for item in again.values()} == {2}


async def test_a_refused_create_fails_the_item_without_asking_the_server(
    client: AsyncReplicate, fake: FakeReplicate, store: str
) -> None:
    fake.faults.add(CREATE, method="POST", status=422, times=1)
    items = await collect(client.batch("fake/echo", [{"id": 1}], store=store))
    assert items["1"].state == "failed"
    assert "422" in (items["1"].error or "")
    assert fake.count("GET", "/v1/predictions") == 0


async def test_cancel_sends_one_cancel_per_running_prediction(
    client: AsyncReplicate, fake: FakeReplicate, store: str
) -> None:
    inputs = [{"id": i, "text": "zzz"} for i in range(4)]
    batch = client.batch("fake/slow", inputs, store=store, wait=None, concurrency=4)

    async def drain() -> list[BatchItem]:
        return [item async for item in batch]

    running = asyncio.ensure_future(drain())
    for _ in range(500):  # until all four ids are recorded (5 s at most)
        if (await batch.status()).counts["running"] == 4:
            break
        await asyncio.sleep(0.01)
    other = client.batch(None, store=store)  # another process, say, canceling too
    sent = await asyncio.gather(batch.cancel(), other.cancel())
    await other.aclose()
    assert sum(sent) == 4
    assert fake.count("POST", "/v1/predictions/*/cancel") == 4
    finished = await asyncio.wait_for(running, 10)
    assert {item.state for item in finished} == {"canceled"}
    status = await batch.status()
    assert status.counts["canceled"] == 4
    await batch.aclose()


async def test_outputs_are_saved_by_key_and_exported_keyed_by_id(
    client: AsyncReplicate, tmp_path: Path
) -> None:
    store, out = str(tmp_path / "b.db"), tmp_path / "out"
    inputs = [{"id": "cat/1", "prompt": "cat"}, {"id": "dog", "prompt": "dog"}]
    items = await collect(client.batch("fake/image", inputs, store=store, out_dir=out))
    dog = [Path(p) for p in items["dog"].saved]
    assert dog
    assert all(p.parent == out for p in dog)
    assert all(p.name.startswith("dog") for p in dog)
    assert all(p.stat().st_size > 0 for p in dog)
    cat = Path(items["cat/1"].saved[0])
    assert cat.parent == out
    assert cat.name.startswith("cat_1-")  # a safe name, never a folder
    results = tmp_path / "results.jsonl"
    async with client.batch(None, store=store) as existing:
        assert await existing.export(results) == 2
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [line["key"] for line in lines] == ["cat/1", "dog"]
    assert lines[1]["state"] == "succeeded"
    assert lines[1]["output"] == items["dog"].output


async def test_inputs_from_a_jsonl_file_an_async_iterable_or_a_key_function(
    client: AsyncReplicate, fake: FakeReplicate, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": str(i)}) + "\n" for i in range(3)))
    items = await collect(client.batch("fake/echo", path, store=str(tmp_path / "a.db")))
    assert sorted(items) == ["0", "1", "2"]

    async def generated() -> AsyncIterator[dict[str, Any]]:
        for i in range(3):
            yield {"text": f"g{i}"}

    batch = client.batch(
        "fake/echo", generated(), store=str(tmp_path / "b.db"), key=lambda x: x["text"]
    )
    assert sorted(await collect(batch)) == ["g0", "g1", "g2"]


async def test_bad_arguments_are_refused_before_any_request(
    client: AsyncReplicate, fake: FakeReplicate, tmp_path: Path
) -> None:
    store = str(tmp_path / "b.db")
    with pytest.raises(InvalidArgumentError, match="concurrency"):
        client.batch("fake/echo", [], store=store, concurrency=0)
    with pytest.raises(InvalidArgumentError, match="key"):
        client.batch("fake/echo", [], store=store, key="")
    with pytest.raises(TypeError, match="store"):
        client.batch("fake/echo", [], store=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="no key field 'id'"):
        await collect(client.batch("fake/echo", [{"text": "no id"}], store=store))
    counter = itertools.count()
    await collect(client.batch("fake/echo", [], store=store, key=lambda _: next(counter)))
    with pytest.raises(InvalidArgumentError, match="runs 'fake/echo', not 'fake/upper'"):
        await collect(client.batch("fake/upper", [], store=store))
    assert creates(fake) == 0


async def test_lost_answers_are_adopted_and_refused_creates_sent_again_once(
    client: AsyncReplicate, fake: FakeReplicate, store: str
) -> None:
    fake.faults.add(CREATE, method="POST", status=429, retry_after=1, times=2)
    fake.faults.add(CREATE, method="POST", status=500, times=2)  # answered: nothing made
    fake.faults.add(CREATE, method="POST", drop_connection="after_body", times=2)  # made
    inputs = [{"id": i, "text": f"t{i}"} for i in range(30)]
    batch = client.batch("fake/echo", inputs, store=store, settle=0.1)
    items = await collect(batch)
    assert {item.state for item in items.values()} == {"succeeded"}
    assert (batch.tally.adopted, batch.tally.recreated, batch.tally.added) == (2, 2, 30)
    made: dict[str, int] = {}
    for prediction in fake.predictions.values():
        key = str((prediction.input or {}).get("id"))
        made[key] = made.get(key, 0) + 1
    assert all(made[str(i)] == 1 for i in range(30))  # 30 predictions for 30 inputs
    assert sorted(item.attempts for item in items.values()) == [1] * 28 + [2, 2]
    # 30 creates made it, 2 more were refused with a 500; the 429s were waited out.
    assert creates(fake) == 30 + 2 + 2


async def test_run_one_by_job_id_never_pays_twice_for_a_redelivered_job(
    client: AsyncReplicate, fake: FakeReplicate, store: str
) -> None:
    async with client.batch("fake/echo", store=store) as batch:
        await batch.store.open({"ref": "fake/echo"})
        await batch.store.add([("older", json.dumps({"text": "not this one"}))])
        first = await batch.run_one("job-1", {"text": "one"})
        older = await batch.store.get("older")
        assert older is not None
        assert older.state == "pending"  # only the job's own item was run
        assert first.state == "succeeded"
        assert first.output == {"text": "one"}
        assert creates(fake) == 1
        again = await batch.run_one("job-1", {"text": "one"})  # redelivered after it ended
        assert again.prediction_id == first.prediction_id
        assert creates(fake) == 1
    # Redelivered after a crash: one job was running (id recorded), one mid-create.
    await ghost_claim(store, "fake/echo", [("job-2", {"text": "two"}), ("job-3", {"text": "3"})])
    running = await client.models.predictions.create("fake/echo", input={"text": "two"})
    await record_id(store, "job-2", running.id)
    created = await client.models.predictions.create("fake/echo", input={"text": "3"})
    before = creates(fake)
    async with client.batch(None, store=store, settle=0.1) as batch:
        two, three = await asyncio.gather(
            batch.run_one("job-2", {"text": "two"}), batch.run_one("job-3", {"text": "3"})
        )
    assert creates(fake) == before
    assert (two.prediction_id, three.prediction_id) == (running.id, created.id)
    assert two.state == three.state == "succeeded"


async def test_a_cancel_during_a_create_cancels_that_prediction_when_its_id_comes(
    client: AsyncReplicate, fake: FakeReplicate, store: str
) -> None:
    fake.faults.add("/v1/models/fake/slow/predictions", method="POST", delay=0.5, times=2)
    inputs = [{"id": i, "text": "zzz"} for i in range(2)]
    async with client.batch("fake/slow", inputs, store=store, wait=None) as batch:

        async def drain() -> list[BatchItem]:
            return [item async for item in batch]

        running = asyncio.ensure_future(drain())
        for _ in range(500):  # until both creates are on their way (5 s at most)
            if (await batch.status()).counts["creating"] == 2:
                break
            await asyncio.sleep(0.01)
        assert await batch.cancel() == 0  # no id known yet: nothing to cancel right now
        finished = await asyncio.wait_for(running, 10)
    assert [item.state for item in finished] == ["canceled", "canceled"]
    assert fake.count("POST", "/v1/predictions/*/cancel") == 2
    assert {p.status for p in fake.predictions.values() if p.model == "fake/slow"} == {"canceled"}
