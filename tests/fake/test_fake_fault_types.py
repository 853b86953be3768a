"""``fake.faults.add`` refuses what it cannot use, at once, instead of a 500 on every
later request."""

from __future__ import annotations

from typing import Any

import pytest

from replicate_async.testing import FakeReplicate
from replicate_async.testing._faults import Fault


@pytest.mark.parametrize(
    "spec",
    [
        {"status": "503"},
        {"status": 503.0},
        {"status": True},
        {"times": "2"},
        {"retry_after": 1.5},
        {"delay": "1"},
        {"delay": -1},
        {"slow_body": [1]},
        {"method": 5},
        {"headers": {"X-A": 1}},
        {"headers": [("X-A", "1")]},
        {"html_error": "yes"},
        {"body": object()},
    ],
    ids=repr,
)
async def test_wrongly_typed_fields_are_refused_when_added(spec: dict[str, Any]) -> None:
    async with FakeReplicate() as fake, fake.client() as client:
        with pytest.raises(TypeError):
            fake.faults.add("/v1/account", **spec)
        assert len(fake.faults) == 0
        assert (await client.account.get()).username  # requests are served as usual


async def test_a_fault_object_is_refused_with_a_hint() -> None:
    async with FakeReplicate() as fake, fake.client() as client:
        with pytest.raises(TypeError, match="fields"):
            fake.faults.add(Fault("/v1/account", status=503))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="path"):
            fake.faults.add(path=3)  # type: ignore[arg-type]
        assert len(fake.faults) == 0
        assert (await client.account.get()).username


async def test_an_impossible_status_is_refused() -> None:
    async with FakeReplicate() as fake:
        with pytest.raises(ValueError, match="status"):
            fake.faults.add("/v1/account", status=42)


async def test_well_typed_faults_still_fire() -> None:
    async with FakeReplicate() as fake, fake.client(max_retries=0) as client:
        fault = fake.faults.add("/v1/account", status=503, delay=0, headers={"X-A": "1"})
        with pytest.raises(Exception, match="Injected fault"):
            await client.account.get()
        assert fault.hits == 1
