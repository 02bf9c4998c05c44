"""Stream worker, alternative: the group made on NOGROUP, one XPENDING per batch, a Lua script for dead letters."""

from __future__ import annotations

from collections.abc import Callable

import redis

BALANCES = "balances"  # hash: account -> balance, the effect credit_once applies
APPLIED = "applied"  # set: the ids of the entries whose effect has been applied (the dedup record)

# KEYS[1] = APPLIED, KEYS[2] = BALANCES; ARGV = entry id, account, amount. One script runs as one
# indivisible step: the dedup record and the effect are written together or not at all.
CREDIT_ONCE_LUA = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

# KEYS[1] = the stream, KEYS[2] = the dead-letter stream; ARGV = group, entry id, then field, value...
DEAD_LETTER_LUA = """
local copy = {'source_id', ARGV[2]}
for i = 3, #ARGV, 2 do
    if ARGV[i] ~= 'source_id' then
        table.insert(copy, ARGV[i])
        table.insert(copy, ARGV[i + 1])
    end
end
redis.call('XADD', KEYS[2], '*', unpack(copy))
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
"""

Handler = Callable[[str, dict[str, str]], None]


def id_key(entry_id: str) -> tuple[int, int]:
    """Stream ids order by their two numbers, not as text ('10-0' comes after '9-0')."""
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def publish(r: redis.Redis, stream: str, fields: dict[str, str]) -> str:
    """Append an entry to `stream` (XADD with an id chosen by the server) and return its id."""
    return str(r.xadd(stream, fields))  # type: ignore[arg-type]


def credit_once(r: redis.Redis, entry_id: str, account: str, amount: int) -> bool:
    """Add `amount` to `account` in BALANCES unless entry `entry_id` was applied already.

    True if this call applied it, False for a duplicate; the record and the effect are one step.
    """
    # the dedup record (entry_id in APPLIED) and the HINCRBY in one atomic step.
    script = r.register_script(CREDIT_ONCE_LUA)  # EVALSHA, loaded again on NOSCRIPT
    return bool(script(keys=[APPLIED, BALANCES], args=[entry_id, account, amount]))


class Worker:
    """One consumer of a consumer group: see the README for the contract.

    >>> worker = Worker(r, "payments", "ledger", "worker-1", handler, min_idle_ms=60_000)
    >>> worker.run_once(count=10)
    ['1700000000000-0', '1700000000000-1']
    """

    def __init__(
        self,
        r: redis.Redis,
        stream: str,
        group: str,
        consumer: str,
        handler: Handler,
        *,
        min_idle_ms: int = 60_000,
        max_deliveries: int = 3,
        dead_letter_stream: str | None = None,
        start: str = "0",
    ) -> None:
        if min_idle_ms < 0:
            raise ValueError(f"min_idle_ms must be >= 0, got {min_idle_ms}")
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be >= 1, got {max_deliveries}")
        self.r = r
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.handler = handler
        self.min_idle_ms = min_idle_ms
        self.max_deliveries = max_deliveries
        self.dead_letter_stream = dead_letter_stream or f"{stream}:dead"
        self.start = start

    # The helpers below are a suggested split; only run_once is called by the tests.

    def ensure_group(self) -> None:
        """Create the group (and the stream, MKSTREAM) at `start`; an existing group is kept as it is."""
        # XGROUP CREATE ... MKSTREAM; BUSYGROUP means another worker created it first.
        try:
            self.r.xgroup_create(self.stream, self.group, id=self.start, mkstream=True)
        except redis.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    def reclaim(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """Claim up to `count` entries idle for at least min_idle_ms, following XAUTOCLAIM's cursor."""
        # XAUTOCLAIM from 0-0 until the cursor comes back as 0-0 or `count` entries are claimed.
        claimed: list[tuple[str, dict[str, str]]] = []
        cursor = "0-0"
        while len(claimed) < count:
            # Redis 6.2 replies [cursor, entries], 7.x [cursor, entries, deleted ids]: read by index.
            reply = self.r.xautoclaim(self.stream, self.group, self.consumer, self.min_idle_ms, cursor,
                                      count=count - len(claimed))
            cursor = reply[0]
            # On 6.2 an entry deleted while pending comes back without its id and fields: skip it.
            claimed += [(entry_id, fields) for entry_id, fields in reply[1] if entry_id is not None]
            if cursor == "0-0":
                break
        return claimed

    def read_new(self, count: int, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        """Up to `count` entries never delivered to this group (the special id '>')."""
        # XREADGROUP ... STREAMS stream >, with BLOCK only when block_ms is given.
        reply = self.r.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
        return list(reply[0][1]) if reply else []

    def deliveries(self, ids: list[str]) -> dict[str, int]:
        """The server's delivery counts of a batch of pending entries, in one XPENDING range."""
        if not ids:
            return {}
        rows = self.r.xpending_range(self.stream, self.group, min(ids, key=id_key), max(ids, key=id_key),
                                     10_000, consumername=self.consumer)
        return {row["message_id"]: int(row["times_delivered"]) for row in rows}

    def dead_letter(self, entry_id: str, fields: dict[str, str]) -> None:
        """Copy and ack in one script: the copy and the XACK happen together or not at all."""
        flat = [item for pair in fields.items() for item in pair]
        self.r.eval(DEAD_LETTER_LUA, 2, self.stream, self.dead_letter_stream, self.group, entry_id, *flat)

    def run_once(self, count: int = 10, block_ms: int | None = None) -> list[str]:
        """Reclaim idle entries, read new ones, handle each; return the ids handled and acked, in order."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        try:
            entries = self.reclaim(count) + self.read_new(count, block_ms)
        except redis.ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            self.ensure_group()  # first use: create the group, then try again
            entries = self.reclaim(count) + self.read_new(count, block_ms)
        counts = self.deliveries([entry_id for entry_id, _ in entries])
        done: list[str] = []
        for entry_id, fields in entries:
            if counts[entry_id] > self.max_deliveries:
                self.dead_letter(entry_id, fields)
                continue
            try:
                self.handler(entry_id, fields)
            except Exception:
                continue  # stays pending: reclaimed (by anyone) once idle for min_idle_ms
            # Ack only now: a crash before this line leaves the entry pending, never lost.
            self.r.xack(self.stream, self.group, entry_id)
            done.append(entry_id)
        return done
