"""Held creates and streams have their own connection budget: they never starve quick calls."""

from __future__ import annotations

import asyncio

from replicate_async import ClientClosedError

from ._virtual import PROMPT, made, tick, virtual_fake

HELD = "/v1/models/fake/slow/predictions"


async def test_quick_calls_go_through_while_every_slot_is_held() -> None:
    """max_connections=2: two runs held and two streams waiting for a held slot: a GET
    still goes out at once, with no virtual time passing."""
    async with virtual_fake() as (fake, clock):
        client = fake.client(clock=clock, max_connections=2)
        try:
            runs = [asyncio.ensure_future(client.run("fake/slow", input={})) for _ in range(2)]
            streams = [client.stream("fake/tokens", input={"prompt": PROMPT}) for _ in range(2)]
            reading = [asyncio.ensure_future(anext(s)) for s in streams]
            for _ in range(200):
                if fake.count("POST", HELD) == 2 and len(made(fake)) == 4:
                    break
                await asyncio.sleep(0.01)
            now = clock.monotonic()
            model = await asyncio.wait_for(client.models.get("fake/upper"), 10)
            assert model.name == "upper"
            assert clock.monotonic() == now
            assert fake.count("GET", "/v1/streams/*") == 0  # the held budget is full
        finally:
            # Virtual time runs so the held creates answer and can be canceled.
            ticking = asyncio.ensure_future(tick(clock))
            await client.aclose()
            ticking.cancel()
        for task in [*runs, *reading]:
            assert isinstance(task.exception(), ClientClosedError)
        assert {p.status for p in made(fake)} == {"canceled"}
        assert len(made(fake)) == 4
