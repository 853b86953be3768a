"""One FakeReplicate in its own process, for the multi-worker tests.

``python -m tests.redis._fake_proc '<FakeReplicate options as JSON>'`` prints one JSON line
with the base URL and token, then answers JSON commands read from stdin, one per line:
``{"op": "summary"}`` (what the fake saw), ``{"op": "behaviour", "model": ..., "duration": s}``,
``{"op": "inputs"}`` (each prediction's input text), ``{"op": "status", "id": ...}``.
It exits when stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections import Counter
from typing import Any

from replicate_async.testing import FakeReplicate

_CANCEL = re.compile(r"^/v1/predictions/([^/]+)/cancel$")


def summary(fake: FakeReplicate) -> dict[str, Any]:
    creates: Counter[str] = Counter()
    cancels: Counter[str] = Counter()
    cancel_times: dict[str, float] = {}
    for request in fake.requests:
        if request.method == "POST" and request.path.endswith("/predictions"):
            creates[str(request.status)] += 1
        match = _CANCEL.match(request.path)
        if request.method == "POST" and match:
            cancels[match.group(1)] += 1
            cancel_times.setdefault(match.group(1), request.time)
    return {
        "creates": dict(creates),
        "cancels": dict(cancels),
        "cancel_times": cancel_times,
        "deliveries_ok": sum(1 for d in fake.webhook_deliveries if d.ok),
        "deliveries": len(fake.webhook_deliveries),
    }


async def main(options: dict[str, Any]) -> None:
    async with FakeReplicate(**options) as fake:
        print(json.dumps({"ready": True, "base_url": fake.base_url, "token": fake.token}))
        sys.stdout.flush()
        while line := await asyncio.to_thread(sys.stdin.readline):
            command = json.loads(line)
            answer: dict[str, Any] = {"ok": True}
            if command["op"] == "summary":
                answer = summary(fake)
            elif command["op"] == "behaviour":
                fake.set_model_behaviour(command["model"], duration=command["duration"])
            elif command["op"] == "inputs":  # prediction id -> its input's "text"
                store = fake._ctx.store
                answer = {
                    pid: str(p.to_json(fake.origin)["input"].get("text", ""))
                    for pid, p in store.predictions.items()
                }
            elif command["op"] == "status":
                found = fake.prediction(command["id"])
                answer = {"status": None if found is None else found["status"]}
            print(json.dumps(answer))
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
