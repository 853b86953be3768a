"""The shared ledger: one Redis for many processes and machines (the [redis] extra).

Each item is a hash; ``pending`` (by position) and ``inflight`` (by lease end) are sorted
sets, so a claim pops the oldest pending items and a dead worker's claims are found by
their expired leases. Every change of an item is one Lua script, so it is atomic: a claim
records the intent with the claim, and an update from a worker that lost its claim is
refused.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from ._groups import Groups, Outcome
from ._items import BatchItem, ItemState, LedgerStats
from ._store import SETTABLE, Fields

__all__ = ["RedisStore"]

_NUMBERS = ("lease_until", "intent_at", "started_at", "finished_at", "predict_time")

# KEYS: prefix. ARGV: key1, input1, key2, input2...
_ADD = """
local p = KEYS[1]
local added = 0
for i = 1, #ARGV, 2 do
  local item = p .. ':item:' .. ARGV[i]
  if redis.call('EXISTS', item) == 0 then
    local seq = redis.call('INCR', p .. ':seq')
    redis.call('HSET', item, 'seq', seq, 'input', ARGV[i + 1], 'state', 'pending',
               'attempts', 0)
    redis.call('ZADD', p .. ':pending', seq, ARGV[i])
    redis.call('ZADD', p .. ':order', seq, ARGV[i])
    redis.call('HINCRBY', p .. ':counts', 'pending', 1)
    added = added + 1
  end
end
return added
"""

# ARGV: owner, now, lease, limit, key ('' any). Returns the claimed keys.
_CLAIM = """
local p = KEYS[1]
local lease_end = tonumber(ARGV[2]) + tonumber(ARGV[3])
local popped = {}
if ARGV[5] == '' then
  popped = redis.call('ZPOPMIN', p .. ':pending', tonumber(ARGV[4]))
elseif redis.call('ZREM', p .. ':pending', ARGV[5]) == 1 then
  popped = {ARGV[5], 0}
end
local keys = {}
for i = 1, #popped, 2 do
  local key = popped[i]
  local item = p .. ':item:' .. key
  redis.call('HSET', item, 'state', 'creating', 'owner', ARGV[1], 'lease_until', lease_end,
             'intent_at', ARGV[2])
  redis.call('HDEL', item, 'prediction_id', 'error')
  redis.call('HINCRBY', item, 'attempts', 1)
  redis.call('ZADD', p .. ':inflight', lease_end, key)
  keys[#keys + 1] = key
end
local n = #keys
if n > 0 then
  redis.call('HINCRBY', p .. ':counts', 'pending', -n)
  redis.call('HINCRBY', p .. ':counts', 'creating', n)
  local first = redis.call('HGET', p .. ':stats', 'first_intent')
  if not first then redis.call('HSET', p .. ':stats', 'first_intent', ARGV[2]) end
end
return keys
"""

# ARGV: key, owner ('' any), expected state ('' any), then name, value pairs ('\\0': unset).
_UPDATE = """
local p = KEYS[1]
local key = ARGV[1]
local item = p .. ':item:' .. key
local fields = redis.call('HMGET', item, 'state', 'owner', 'seq', 'lease_until')
local old = fields[1]
if not old then return 0 end
if ARGV[2] ~= '' and fields[2] ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' and old ~= ARGV[3] then return 0 end
local new = old
local lease = fields[4]
for i = 4, #ARGV, 2 do
  local name, value = ARGV[i], ARGV[i + 1]
  if value == '\\0' then
    redis.call('HDEL', item, name)
    if name == 'lease_until' then lease = false end
  else
    redis.call('HSET', item, name, value)
    if name == 'state' then new = value end
    if name == 'lease_until' then lease = value end
    if name == 'prediction_id' then redis.call('HSET', p .. ':pred', value, key) end
    if name == 'predict_time' then
      redis.call('HINCRBYFLOAT', p .. ':stats', 'predict_time', value)
    end
    if name == 'finished_at' then
      local last = tonumber(redis.call('HGET', p .. ':stats', 'last_finish') or '0')
      if tonumber(value) > last then redis.call('HSET', p .. ':stats', 'last_finish', value) end
    end
  end
end
if new ~= old then
  redis.call('HINCRBY', p .. ':counts', old, -1)
  redis.call('HINCRBY', p .. ':counts', new, 1)
  if new == 'pending' then redis.call('ZADD', p .. ':pending', fields[3], key) end
end
if new == 'creating' or new == 'running' then
  redis.call('ZADD', p .. ':inflight', tonumber(lease or '0'), key)
else
  redis.call('ZREM', p .. ':inflight', key)
end
return 1
"""

# ARGV: mode (renew, owners, take), owner, lease end, now, only key ('' any), dead owners...
#   renew: set lease of owner's items; take: take expired/dead items. Returns keys.
_LEASES = """
local p = KEYS[1]
local mode, owner, lease_end, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local dead = {}
for i = 6, #ARGV do dead[ARGV[i]] = true end
local keys = {}
local members = redis.call('ZRANGE', p .. ':inflight', 0, -1, 'WITHSCORES')
for i = 1, #members, 2 do
  local key, lease = members[i], tonumber(members[i + 1])
  local item = p .. ':item:' .. key
  local holder = redis.call('HGET', item, 'owner')
  local take = false
  if ARGV[5] ~= '' and key ~= ARGV[5] then take = false
  elseif mode == 'renew' then take = holder == owner
  elseif mode == 'owners' then keys[#keys + 1] = holder or ''
  elseif lease < now or (holder and dead[holder]) then
    if mode == 'stalled' then keys[#keys + 1] = redis.call('HGET', item, 'state')
    else take = true end
  end
  if take then
    redis.call('HSET', item, 'owner', owner, 'lease_until', lease_end)
    redis.call('ZADD', p .. ':inflight', lease_end, key)
    keys[#keys + 1] = key
  end
end
return keys
"""


def _encode(value: Any) -> Any:
    """A field's value for the update script (``None`` unsets the field)."""
    if value is None:
        return "\0"
    return repr(value) if isinstance(value, float) else value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _item(raw: Mapping[bytes, bytes], key: str) -> BatchItem:
    data = {_text(k): _text(v) for k, v in raw.items()}
    numbers = {name: float(data[name]) for name in _NUMBERS if name in data}
    return BatchItem(
        key=key,
        input=json.loads(data["input"]),
        state=data["state"],  # type: ignore[arg-type]
        attempts=int(data.get("attempts", 0)),
        prediction_id=data.get("prediction_id"),
        owner=data.get("owner"),
        output=json.loads(data["output"]) if "output" in data else None,
        saved=tuple(json.loads(data["saved"])) if "saved" in data else (),
        error=data.get("error"),
        **numbers,
    )


class RedisStore:
    """A batch ledger in Redis, under ``prefix`` (one prefix per batch)."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "replicate-batch") -> None:
        self._redis = redis
        self._owned = False
        self.prefix = prefix
        self._add = redis.register_script(_ADD)
        self._claim = redis.register_script(_CLAIM)
        self._update = redis.register_script(_UPDATE)
        self._leases = redis.register_script(_LEASES)
        #: Updates made in the same turn of the loop go in one pipeline (one round trip;
        #: each script still atomic on its own).
        self._updates: Groups[list[Any]] = Groups(self._send_updates)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "replicate-batch") -> RedisStore:
        """A store on a new connection pool to ``url`` (closed by :meth:`aclose`)."""
        redis = aioredis.Redis.from_url(url, socket_connect_timeout=5.0, socket_timeout=30.0)
        store = cls(redis, prefix=prefix)
        store._owned = True
        return store

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"

    def _k(self, name: str) -> str:
        return f"{self.prefix}:{name}"

    async def _items(self, keys: Sequence[str]) -> list[BatchItem]:
        if not keys:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(self._k(f"item:{key}"))
        rows = await pipe.execute()
        return [_item(row, key) for row, key in zip(rows, keys, strict=True) if row]

    async def open(self, meta: Mapping[str, str]) -> dict[str, str]:
        pipe = self._redis.pipeline(transaction=True)
        for name, value in meta.items():
            pipe.hsetnx(self._k("meta"), name, value)
        await pipe.execute()
        return await self.get_meta()

    async def get_meta(self) -> dict[str, str]:
        raw = await self._redis.hgetall(self._k("meta"))
        return {_text(k): _text(v) for k, v in raw.items()}

    async def set_meta(self, name: str, value: str) -> None:
        await self._redis.hset(self._k("meta"), name, value)

    async def add(self, rows: Sequence[tuple[str, str]]) -> int:
        if not rows:
            return 0
        args = [part for row in rows for part in row]
        return int(await self._add(keys=[self.prefix], args=args))

    async def get(self, key: str) -> BatchItem | None:
        found = await self._items([key])
        return found[0] if found else None

    async def claim(
        self, owner: str, now: float, lease: float, limit: int, *, key: str | None = None
    ) -> list[BatchItem]:
        args: list[str | int] = [owner, repr(now), repr(lease), limit, key or ""]
        keys = await self._claim(keys=[self.prefix], args=args)
        return await self._items([_text(found) for found in keys])

    async def update(
        self, key: str, fields: Fields, *, owner: str | None = None, state: str | None = None
    ) -> bool:
        unknown = set(fields) - SETTABLE
        if unknown:
            raise ValueError(f"unknown item fields: {sorted(unknown)}")
        args: list[Any] = [key, owner or "", state or ""]
        for name, value in fields.items():
            args += [
                name,
                "\0" if value is None else repr(value) if isinstance(value, float) else value,
            ]
        return bool(await self._updates.submit(args))

    async def _send_updates(self, group: list[list[Any]]) -> list[Outcome]:
        if len(group) == 1:
            return [(True, await self._update(keys=[self.prefix], args=group[0]))]
        results = await self._evalsha_each(group)
        lost = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if lost:  # the server forgot the script (restarted, flushed): none of those ran
            await self._redis.script_load(self._update.script)
            again = await self._evalsha_each([group[i] for i in lost])
            for i, result in zip(lost, again, strict=True):
                results[i] = result
        return [(not isinstance(result, Exception), result) for result in results]

    async def _evalsha_each(self, group: list[list[Any]]) -> list[Any]:
        """The update script once per args, in one pipeline (no ``SCRIPT EXISTS`` round
        trip first, as a pipeline of ``Script`` calls would send)."""
        pipe = self._redis.pipeline(transaction=False)
        for args in group:
            pipe.evalsha(self._update.sha, 1, self.prefix, *args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        return results

    async def _lease_op(
        self,
        mode: str,
        owner: str,
        until: float,
        now: float,
        dead: Collection[str] = (),
        key: str | None = None,
    ) -> list[str]:
        args = [mode, owner, repr(until), repr(now), key or "", *dead]
        keys = await self._leases(keys=[self.prefix], args=args)
        return [_text(key) for key in keys]

    async def renew(self, owner: str, until: float) -> None:
        await self._lease_op("renew", owner, until, 0.0)

    async def release(self, owner: str) -> None:
        await self._lease_op("renew", owner, 0.0, 0.0)

    async def owners(self) -> set[str]:
        return {owner for owner in await self._lease_op("owners", "", 0.0, 0.0) if owner}

    async def stalled(self, now: float, dead: Collection[str]) -> dict[str, int]:
        return dict(Counter(await self._lease_op("stalled", "", 0.0, now, dead)))

    async def take_over(
        self,
        owner: str,
        now: float,
        lease: float,
        dead: Collection[str],
        *,
        key: str | None = None,
    ) -> list[BatchItem]:
        keys = await self._lease_op("take", owner, now + lease, now, dead, key)
        return await self._items(keys)

    async def move(self, states: Collection[ItemState], to: ItemState, now: float) -> int:
        moved = 0
        after: int | None = 0
        finished = repr(now) if to in ("succeeded", "failed", "canceled") else None
        while after is not None:
            page, after = await self.scan(states, after, 1000)
            for item in page:
                fields: dict[str, Any] = {"state": to, "owner": None, "lease_until": None}
                fields["finished_at"] = finished
                moved += await self.update(item.key, fields, state=item.state)
        return moved

    async def known_predictions(self, ids: Collection[str]) -> set[str]:
        ids = list(ids)
        if not ids:
            return set()
        found = await self._redis.hmget(self._k("pred"), ids)
        return {pid for pid, key in zip(ids, found, strict=True) if key is not None}

    async def scan(
        self, states: Collection[ItemState] | None, after: int, limit: int
    ) -> tuple[list[BatchItem], int | None]:
        raw = await self._redis.zrangebyscore(
            self._k("order"), f"({after}", "+inf", start=0, num=limit, withscores=True
        )
        keys = [_text(pair[0]) for pair in raw]
        items = await self._items(keys)
        if states is not None:
            items = [item for item in items if item.state in states]
        more = int(raw[-1][1]) if len(raw) == limit else None
        return items, more

    async def stats(self) -> LedgerStats:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(self._k("counts"))
        pipe.hgetall(self._k("stats"))
        counts_raw, stats_raw = await pipe.execute()
        counts = {_text(k): int(v) for k, v in counts_raw.items()}
        stats = {_text(k): float(v) for k, v in stats_raw.items()}
        return LedgerStats(
            counts,
            stats.get("first_intent"),
            stats.get("last_finish"),
            stats.get("predict_time", 0.0),
        )

    async def aclose(self) -> None:
        await self._updates.drain()
        if self._owned:
            await self._redis.aclose()
